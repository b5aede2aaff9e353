package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// About the rules on spec.addresses: CEL has no ordering of addresses, so the
// rule that a range "first-last" is not reversed finds the first bit n where
// the two ends differ (the last end's /n network contains the first end, its
// /n+1 network does not) and requires that bit to be set in the last end (its
// /n+1 and /n networks differ). The prefix lengths are literal strings because
// the apiserver's cost estimator cannot bound the size of string(n); with the
// maxItems and maxLength limits this keeps every rule within the CEL cost
// budget (about 9M of the 10M allowed per rule). The ends are cut out with
// substring, whose result size the estimator knows, not split, whose elements
// it does not.

// IPAddressPoolSpec says which addresses a pool hands out and to which Services.
type IPAddressPoolSpec struct {
	// Addresses lists the addresses of the pool, as CIDRs (192.0.2.0/24,
	// 2001:db8::/64; a single address is a /32 or /128) or inclusive ranges
	// "first-last" of two addresses of one family (192.0.2.10-192.0.2.20, no
	// spaces). IPv4 and IPv6 entries may be mixed: a pool with both families can
	// serve dual-stack Services. A CIDR must have no host bits set. At most 64
	// entries of at most 80 characters. No entry may contain multicast,
	// loopback, link-local, unspecified or broadcast (255.255.255.255)
	// addresses, which no Service may get. Overlaps between entries or with
	// other pools are not rejected here: a pool overlapping an older pool is
	// frozen (its Valid condition says so, naming the older pool). Same as
	// MetalLB's spec.addresses.
	//
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=80
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || (self.indexOf('-') > 0 && self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-'))) && isIP(self.substring(self.indexOf('-') + 1)))",messageExpression="'addresses: ' + self + ' is neither a CIDR (192.0.2.0/24, 2001:db8::/64) nor a range first-last (192.0.2.10-192.0.2.20)'"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",messageExpression="'addresses: ' + self + ' has host bits set; write the network address (192.0.2.0/24, not 192.0.2.1/24)'"
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || !(self.indexOf('-') > 0 && self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-'))) && isIP(self.substring(self.indexOf('-') + 1))) || ip(self.substring(0, self.indexOf('-'))).family() == ip(self.substring(self.indexOf('-') + 1)).family()",messageExpression="'addresses: range ' + self + ' mixes IPv4 and IPv6; both ends must be of one family'"
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || !(self.indexOf('-') > 0 && self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-'))) && isIP(self.substring(self.indexOf('-') + 1))) || ip(self.substring(0, self.indexOf('-'))).family() != ip(self.substring(self.indexOf('-') + 1)).family() || ip(self.substring(0, self.indexOf('-'))) == ip(self.substring(self.indexOf('-') + 1)) || ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127'].exists(n, p, (n < 32 || self.contains(':')) && cidr(self.substring(self.indexOf('-') + 1) + '/' + p).containsIP(self.substring(0, self.indexOf('-'))) && !cidr(self.substring(self.indexOf('-') + 1) + '/' + ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][n]).containsIP(self.substring(0, self.indexOf('-'))) && !(cidr(self.substring(self.indexOf('-') + 1) + '/' + ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][n]).masked().ip() == cidr(self.substring(self.indexOf('-') + 1) + '/' + p).masked().ip()))",messageExpression="'addresses: range ' + self + ' is reversed; the first address must not be above the last'"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || !['0.0.0.0/32', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32', '::/128', '::1/128', 'fe80::/10', 'ff00::/8'].exists(b, cidr(self).containsCIDR(b) || cidr(b).containsCIDR(self))",messageExpression="'addresses: ' + self + ' contains multicast, loopback, link-local, unspecified or broadcast addresses, which no Service may get'"
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || !(self.indexOf('-') > 0 && self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-'))) && isIP(self.substring(self.indexOf('-') + 1))) || ip(self.substring(0, self.indexOf('-'))).family() != ip(self.substring(self.indexOf('-') + 1)).family() || ip(self.substring(0, self.indexOf('-'))).family() != 4 || ((['128.0.0.0/1', '64.0.0.0/2', '32.0.0.0/3', '16.0.0.0/4', '8.0.0.0/5', '4.0.0.0/6', '2.0.0.0/7', '1.0.0.0/8', '0.128.0.0/9', '0.64.0.0/10', '0.32.0.0/11', '0.16.0.0/12', '0.8.0.0/13', '0.4.0.0/14', '0.2.0.0/15', '0.1.0.0/16', '0.0.128.0/17', '0.0.64.0/18', '0.0.32.0/19', '0.0.16.0/20', '0.0.8.0/21', '0.0.4.0/22', '0.0.2.0/23', '0.0.1.0/24', '0.0.0.128/25', '0.0.0.64/26', '0.0.0.32/27', '0.0.0.16/28', '0.0.0.8/29', '0.0.0.4/30', '0.0.0.2/31', '0.0.0.1/32'].exists(c, cidr(c).containsIP(self.substring(0, self.indexOf('-'))))) && (['0.0.0.0/2', '64.0.0.0/3', '96.0.0.0/4', '112.0.0.0/5', '120.0.0.0/6', '124.0.0.0/7', '126.0.0.0/8'].exists(c, cidr(c).containsIP(self.substring(self.indexOf('-') + 1))) || ['128.0.0.0/1'].exists(c, cidr(c).containsIP(self.substring(0, self.indexOf('-'))))) && (['0.0.0.0/1', '128.0.0.0/3', '160.0.0.0/5', '168.0.0.0/8', '169.0.0.0/9', '169.128.0.0/10', '169.192.0.0/11', '169.224.0.0/12', '169.240.0.0/13', '169.248.0.0/14', '169.252.0.0/15'].exists(c, cidr(c).containsIP(self.substring(self.indexOf('-') + 1))) || ['192.0.0.0/2', '176.0.0.0/4', '172.0.0.0/6', '170.0.0.0/7', '169.255.0.0/16'].exists(c, cidr(c).containsIP(self.substring(0, self.indexOf('-'))))) && (['0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/3'].exists(c, cidr(c).containsIP(self.substring(self.indexOf('-') + 1))) || ['240.0.0.0/4'].exists(c, cidr(c).containsIP(self.substring(0, self.indexOf('-'))))) && (['0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/3', '224.0.0.0/4', '240.0.0.0/5', '248.0.0.0/6', '252.0.0.0/7', '254.0.0.0/8', '255.0.0.0/9', '255.128.0.0/10', '255.192.0.0/11', '255.224.0.0/12', '255.240.0.0/13', '255.248.0.0/14', '255.252.0.0/15', '255.254.0.0/16', '255.255.0.0/17', '255.255.128.0/18', '255.255.192.0/19', '255.255.224.0/20', '255.255.240.0/21', '255.255.248.0/22', '255.255.252.0/23', '255.255.254.0/24', '255.255.255.0/25', '255.255.255.128/26', '255.255.255.192/27', '255.255.255.224/28', '255.255.255.240/29', '255.255.255.248/30', '255.255.255.252/31', '255.255.255.254/32'].exists(c, cidr(c).containsIP(self.substring(self.indexOf('-') + 1)))))",messageExpression="'addresses: ' + self + ' contains multicast, loopback, link-local, unspecified or broadcast addresses, which no Service may get'"
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || !(self.indexOf('-') > 0 && self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-'))) && isIP(self.substring(self.indexOf('-') + 1))) || ip(self.substring(0, self.indexOf('-'))).family() != ip(self.substring(self.indexOf('-') + 1)).family() || ip(self.substring(0, self.indexOf('-'))).family() != 6 || ((['8000::/1', '4000::/2', '2000::/3', '1000::/4', '800::/5', '400::/6', '200::/7', '100::/8', '80::/9', '40::/10', '20::/11', '10::/12', '8::/13', '4::/14', '2::/15', '1::/16', '0:8000::/17', '0:4000::/18', '0:2000::/19', '0:1000::/20', '0:800::/21', '0:400::/22', '0:200::/23', '0:100::/24', '0:80::/25', '0:40::/26', '0:20::/27', '0:10::/28', '0:8::/29', '0:4::/30', '0:2::/31', '0:1::/32', '0:0:8000::/33', '0:0:4000::/34', '0:0:2000::/35', '0:0:1000::/36', '0:0:800::/37', '0:0:400::/38', '0:0:200::/39', '0:0:100::/40', '0:0:80::/41', '0:0:40::/42', '0:0:20::/43', '0:0:10::/44', '0:0:8::/45', '0:0:4::/46', '0:0:2::/47', '0:0:1::/48', '0:0:0:8000::/49', '0:0:0:4000::/50', '0:0:0:2000::/51', '0:0:0:1000::/52', '0:0:0:800::/53', '0:0:0:400::/54', '0:0:0:200::/55', '0:0:0:100::/56', '0:0:0:80::/57', '0:0:0:40::/58', '0:0:0:20::/59', '0:0:0:10::/60', '0:0:0:8::/61', '0:0:0:4::/62', '0:0:0:2::/63', '0:0:0:1::/64', '::8000:0:0:0/65', '::4000:0:0:0/66', '::2000:0:0:0/67', '::1000:0:0:0/68', '::800:0:0:0/69', '::400:0:0:0/70', '::200:0:0:0/71', '::100:0:0:0/72', '::80:0:0:0/73', '::40:0:0:0/74', '::20:0:0:0/75', '::10:0:0:0/76', '::8:0:0:0/77', '::4:0:0:0/78', '::2:0:0:0/79', '::1:0:0:0/80', '::8000:0:0/81', '::4000:0:0/82', '::2000:0:0/83', '::1000:0:0/84', '::800:0:0/85', '::400:0:0/86', '::200:0:0/87', '::100:0:0/88', '::80:0:0/89', '::40:0:0/90', '::20:0:0/91', '::10:0:0/92', '::8:0:0/93', '::4:0:0/94', '::2:0:0/95', '::1:0:0/96', '::8000:0/97', '::4000:0/98', '::2000:0/99', '::1000:0/100', '::800:0/101', '::400:0/102', '::200:0/103', '::100:0/104', '::80:0/105', '::40:0/106', '::20:0/107', '::10:0/108', '::8:0/109', '::4:0/110', '::2:0/111', '::1:0/112', '::8000/113', '::4000/114', '::2000/115', '::1000/116', '::800/117', '::400/118', '::200/119', '::100/120', '::80/121', '::40/122', '::20/123', '::10/124', '::8/125', '::4/126', '::2/127', '::1/128'].exists(c, cidr(c).containsIP(self.substring(0, self.indexOf('-'))))) && (['::/128'].exists(c, cidr(c).containsIP(self.substring(self.indexOf('-') + 1))) || ['8000::/1', '4000::/2', '2000::/3', '1000::/4', '800::/5', '400::/6', '200::/7', '100::/8', '80::/9', '40::/10', '20::/11', '10::/12', '8::/13', '4::/14', '2::/15', '1::/16', '0:8000::/17', '0:4000::/18', '0:2000::/19', '0:1000::/20', '0:800::/21', '0:400::/22', '0:200::/23', '0:100::/24', '0:80::/25', '0:40::/26', '0:20::/27', '0:10::/28', '0:8::/29', '0:4::/30', '0:2::/31', '0:1::/32', '0:0:8000::/33', '0:0:4000::/34', '0:0:2000::/35', '0:0:1000::/36', '0:0:800::/37', '0:0:400::/38', '0:0:200::/39', '0:0:100::/40', '0:0:80::/41', '0:0:40::/42', '0:0:20::/43', '0:0:10::/44', '0:0:8::/45', '0:0:4::/46', '0:0:2::/47', '0:0:1::/48', '0:0:0:8000::/49', '0:0:0:4000::/50', '0:0:0:2000::/51', '0:0:0:1000::/52', '0:0:0:800::/53', '0:0:0:400::/54', '0:0:0:200::/55', '0:0:0:100::/56', '0:0:0:80::/57', '0:0:0:40::/58', '0:0:0:20::/59', '0:0:0:10::/60', '0:0:0:8::/61', '0:0:0:4::/62', '0:0:0:2::/63', '0:0:0:1::/64', '::8000:0:0:0/65', '::4000:0:0:0/66', '::2000:0:0:0/67', '::1000:0:0:0/68', '::800:0:0:0/69', '::400:0:0:0/70', '::200:0:0:0/71', '::100:0:0:0/72', '::80:0:0:0/73', '::40:0:0:0/74', '::20:0:0:0/75', '::10:0:0:0/76', '::8:0:0:0/77', '::4:0:0:0/78', '::2:0:0:0/79', '::1:0:0:0/80', '::8000:0:0/81', '::4000:0:0/82', '::2000:0:0/83', '::1000:0:0/84', '::800:0:0/85', '::400:0:0/86', '::200:0:0/87', '::100:0:0/88', '::80:0:0/89', '::40:0:0/90', '::20:0:0/91', '::10:0:0/92', '::8:0:0/93', '::4:0:0/94', '::2:0:0/95', '::1:0:0/96', '::8000:0/97', '::4000:0/98', '::2000:0/99', '::1000:0/100', '::800:0/101', '::400:0/102', '::200:0/103', '::100:0/104', '::80:0/105', '::40:0/106', '::20:0/107', '::10:0/108', '::8:0/109', '::4:0/110', '::2:0/111', '::1:0/112', '::8000/113', '::4000/114', '::2000/115', '::1000/116', '::800/117', '::400/118', '::200/119', '::100/120', '::80/121', '::40/122', '::20/123', '::10/124', '::8/125', '::4/126', '::2/127'].exists(c, cidr(c).containsIP(self.substring(0, self.indexOf('-'))))) && (['::/1', '8000::/2', 'c000::/3', 'e000::/4', 'f000::/5', 'f800::/6', 'fc00::/7', 'fe00::/9'].exists(c, cidr(c).containsIP(self.substring(self.indexOf('-') + 1))) || ['ff00::/8', 'fec0::/10'].exists(c, cidr(c).containsIP(self.substring(0, self.indexOf('-'))))) && (['::/1', '8000::/2', 'c000::/3', 'e000::/4', 'f000::/5', 'f800::/6', 'fc00::/7', 'fe00::/8'].exists(c, cidr(c).containsIP(self.substring(self.indexOf('-') + 1)))))",messageExpression="'addresses: ' + self + ' contains multicast, loopback, link-local, unspecified or broadcast addresses, which no Service may get'"
	Addresses []string `json:"addresses"`

	// AutoAssign says whether the pool hands out addresses to Services that do
	// not ask for it by name (annotation lb.herald.dev/address-pool) or by
	// address. Defaults to true. Same as MetalLB's spec.autoAssign.
	//
	// +optional
	// +kubebuilder:default=true
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips the IPv4 addresses ending in .0 and .255 (in every
	// /24 of the pool), which some old client stacks drop as broadcast
	// addresses. It has no effect on IPv6. Defaults to false. Same as
	// MetalLB's spec.avoidBuggyIPs.
	//
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// ServiceAllocation restricts the pool to some Services and orders it
	// against other pools. Unset, every Service may get an address from the
	// pool. Same as MetalLB's spec.serviceAllocation.
	//
	// +optional
	ServiceAllocation *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation restricts which Services a pool serves and how it ranks
// against other pools.
type ServiceAllocation struct {
	// Priority ranks the pool when several pools could serve a Service: a
	// lower positive number is tried first, and 0 (unset) is tried after every
	// pool with a priority. Pools of equal priority are ordered by name. Same as
	// MetalLB's serviceAllocation.priority.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	Priority int `json:"priority,omitempty"`

	// Namespaces lists the namespaces whose Services may get addresses from the
	// pool. Combined with namespaceSelectors as "either"; both empty means any
	// namespace. Same as MetalLB's serviceAllocation.namespaces.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelectors select, by the namespaces' labels, the namespaces
	// whose Services may get addresses from the pool. A namespace matching any
	// selector qualifies. At most 16 selectors, each with at most 16
	// matchExpressions. Same as MetalLB's serviceAllocation.namespaceSelectors.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || size(self.matchExpressions) <= 16",message="namespaceSelectors: a selector takes at most 16 matchExpressions"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || self.matchExpressions[i].operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="namespaceSelectors: matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['In', 'NotIn']) || (has(self.matchExpressions[i].values) && size(self.matchExpressions[i].values) > 0))",message="namespaceSelectors: matchExpressions with operator In or NotIn need values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['Exists', 'DoesNotExist']) || !has(self.matchExpressions[i].values) || size(self.matchExpressions[i].values) == 0)",message="namespaceSelectors: matchExpressions with operator Exists or DoesNotExist take no values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !format.qualifiedName().validate(self.matchExpressions[i].key).hasValue())",message="namespaceSelectors: matchExpressions keys must be label keys: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.qualifiedName().validate(k).hasValue() && !format.labelValue().validate(self.matchLabels[k]).hasValue())",message="namespaceSelectors: matchLabels keys must be label keys and values label values (at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit, or empty)"
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// ServiceSelectors select, by the Services' labels, the Services that may
	// get addresses from the pool. A Service matching any selector qualifies;
	// empty means any Service (of a qualifying namespace). At most 16
	// selectors, each with at most 16 matchExpressions. Same as MetalLB's
	// serviceAllocation.serviceSelectors.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || size(self.matchExpressions) <= 16",message="serviceSelectors: a selector takes at most 16 matchExpressions"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || self.matchExpressions[i].operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="serviceSelectors: matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['In', 'NotIn']) || (has(self.matchExpressions[i].values) && size(self.matchExpressions[i].values) > 0))",message="serviceSelectors: matchExpressions with operator In or NotIn need values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['Exists', 'DoesNotExist']) || !has(self.matchExpressions[i].values) || size(self.matchExpressions[i].values) == 0)",message="serviceSelectors: matchExpressions with operator Exists or DoesNotExist take no values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !format.qualifiedName().validate(self.matchExpressions[i].key).hasValue())",message="serviceSelectors: matchExpressions keys must be label keys: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.qualifiedName().validate(k).hasValue() && !format.labelValue().validate(self.matchLabels[k]).hasValue())",message="serviceSelectors: matchLabels keys must be label keys and values label values (at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit, or empty)"
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// IPAddressPoolStatus is what the controller observes about a pool. Counts
// exclude addresses that avoidBuggyIPs skips. They are int64 and saturate:
// an available count that does not fit (a /64 IPv6 pool has 2^64 addresses)
// reads 9223372036854775807 (the int64 maximum), meaning "more than can be
// counted", never a wrapped or negative number.
type IPAddressPoolStatus struct {
	// AssignedIPv4 is the number of IPv4 addresses of the pool held by
	// Services. Same as MetalLB's status.assignedIPv4.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	AssignedIPv4 int64 `json:"assignedIPv4"`

	// AvailableIPv4 is the number of IPv4 addresses of the pool still free.
	// Same as MetalLB's status.availableIPv4.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	AvailableIPv4 int64 `json:"availableIPv4"`

	// AssignedIPv6 is the number of IPv6 addresses of the pool held by
	// Services. Same as MetalLB's status.assignedIPv6.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	AssignedIPv6 int64 `json:"assignedIPv6"`

	// AvailableIPv6 is the number of IPv6 addresses of the pool still free,
	// saturating at 9223372036854775807 for pools larger than that. Same as
	// MetalLB's status.availableIPv6.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	AvailableIPv6 int64 `json:"availableIPv6"`

	// Conditions report the pool's state: type Valid (False with reason
	// Overlapping when the pool overlaps an older pool, which then wins the
	// overlap and this pool gives no new addresses; the message names the
	// older pool) and OverlapsServiceCIDR.
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types and reasons the controller sets on IPAddressPool status.
const (
	// PoolConditionReady is True when the pool's addresses can be handed out.
	PoolConditionReady = "Ready"
	// PoolReasonOverlapping: the pool's addresses overlap another pool's (or
	// two of its own entries overlap); the message names the other pool.
	PoolReasonOverlapping = "Overlapping"
	// PoolReasonValid: the pool is usable.
	PoolReasonValid = "Valid"
)

// IPAddressPool is a set of addresses Herald hands out to LoadBalancer
// Services, with rules for which Services may use it. Same as MetalLB's
// IPAddressPool.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ipp,categories=herald
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="Avoid Buggy IPs",type=boolean,JSONPath=`.spec.avoidBuggyIPs`
// +kubebuilder:printcolumn:name="IPv4 Assigned",type=integer,JSONPath=`.status.assignedIPv4`
// +kubebuilder:printcolumn:name="IPv4 Available",type=integer,JSONPath=`.status.availableIPv4`
// +kubebuilder:printcolumn:name="IPv6 Assigned",type=integer,JSONPath=`.status.assignedIPv6`
// +kubebuilder:printcolumn:name="IPv6 Available",type=integer,JSONPath=`.status.availableIPv6`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which addresses the pool holds and which Services may use them.
	// +required
	Spec IPAddressPoolSpec `json:"spec"`

	// Status is written by the controller: per-family counts of assigned and
	// available addresses, which saturate at 9223372036854775807 (the int64
	// maximum) for pools too large to count, and conditions.
	// +optional
	Status IPAddressPoolStatus `json:"status,omitempty"`
}

// IPAddressPoolList is a list of IPAddressPool.
//
// +kubebuilder:object:root=true
type IPAddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAddressPool `json:"items"`
}
