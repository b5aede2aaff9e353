package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPAdvertisementSpec says which pools' addresses are announced over BGP, to
// which peers, from which nodes and with which path attributes.
type BGPAdvertisementSpec struct {
	// AggregationLength is the prefix length IPv4 addresses are announced
	// with, 0 to 32. Defaults to 32 (each address alone). A shorter length
	// announces the covering prefix instead, e.g. 24 announces 192.0.2.0/24
	// for 192.0.2.10; it must not be shorter than the prefixes of the pools'
	// CIDRs, which the configuration loader checks against the pools. Same as
	// MetalLB's spec.aggregationLength.
	//
	// +optional
	// +kubebuilder:default=32
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=32
	AggregationLength *int32 `json:"aggregationLength,omitempty"`

	// AggregationLengthV6 is the prefix length IPv6 addresses are announced
	// with, 0 to 128. Defaults to 128 (each address alone). Same as MetalLB's
	// spec.aggregationLengthV6.
	//
	// +optional
	// +kubebuilder:default=128
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=128
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`

	// LocalPref is the BGP LOCAL_PREF attribute of the announcements, 0 to
	// 4294967295. LOCAL_PREF only travels on iBGP sessions, so it is only
	// meaningful when the advertisement reaches iBGP peers (myASN equals
	// peerASN); that needs the BGPPeers and is checked when the configuration
	// is loaded. Unset, no LOCAL_PREF is set. Same as MetalLB's
	// spec.localPref.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	LocalPref *uint32 `json:"localPref,omitempty"`

	// Communities are the BGP communities attached to the announcements. Each
	// entry is a standard community "A:B" (A and B 0 to 65535, e.g.
	// 65000:100), a large community "large:A:B:C" (A, B and C 0 to
	// 4294967295), or the name of an entry of a Community object (lowercase
	// letters, digits and '-', starting with a letter). Same as MetalLB's
	// spec.communities.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[0-9]+:[0-9]+$') || self.matches('^large:[0-9]+:[0-9]+:[0-9]+$') || self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",messageExpression="'communities: ' + self + ' is not a community (65000:100), a large community (large:1:2:3) or the name of a Community entry'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^[0-9]+:[0-9]+$') || self.split(':').all(p, size(p) <= 5 && int(p) <= 65535)",messageExpression="'communities: ' + self + ' has a part above 65535'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^large:[0-9]+:[0-9]+:[0-9]+$') || self.split(':').all(p, p == 'large' || (size(p) <= 10 && int(p) <= 4294967295))",messageExpression="'communities: ' + self + ' has a part above 4294967295'"
	Communities []string `json:"communities,omitempty"`

	// IPAddressPools names the IPAddressPools (in Herald's namespace) whose
	// addresses this advertisement announces. Combined with
	// ipAddressPoolSelectors as "either"; both empty means every pool. Same as
	// MetalLB's spec.ipAddressPools.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// IPAddressPoolSelectors select, by the pools' labels, the IPAddressPools
	// whose addresses this advertisement announces. A pool matching any
	// selector qualifies. At most 16 selectors, each with at most 16
	// matchExpressions. Same as MetalLB's spec.ipAddressPoolSelectors.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || size(self.matchExpressions) <= 16",message="ipAddressPoolSelectors: a selector takes at most 16 matchExpressions"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || self.matchExpressions[i].operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="ipAddressPoolSelectors: matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['In', 'NotIn']) || (has(self.matchExpressions[i].values) && size(self.matchExpressions[i].values) > 0))",message="ipAddressPoolSelectors: matchExpressions with operator In or NotIn need values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['Exists', 'DoesNotExist']) || !has(self.matchExpressions[i].values) || size(self.matchExpressions[i].values) == 0)",message="ipAddressPoolSelectors: matchExpressions with operator Exists or DoesNotExist take no values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !format.qualifiedName().validate(self.matchExpressions[i].key).hasValue())",message="ipAddressPoolSelectors: matchExpressions keys must be label keys: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.qualifiedName().validate(k).hasValue() && !format.labelValue().validate(self.matchLabels[k]).hasValue())",message="ipAddressPoolSelectors: matchLabels keys must be label keys and values label values (at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit, or empty)"
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// NodeSelectors select, by the Nodes' labels, the nodes that announce the
	// addresses. A node matching any selector qualifies; empty means every
	// node. At most 16 selectors, each with at most 16 matchExpressions. Same
	// as MetalLB's spec.nodeSelectors.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || size(self.matchExpressions) <= 16",message="nodeSelectors: a selector takes at most 16 matchExpressions"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || self.matchExpressions[i].operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="nodeSelectors: matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['In', 'NotIn']) || (has(self.matchExpressions[i].values) && size(self.matchExpressions[i].values) > 0))",message="nodeSelectors: matchExpressions with operator In or NotIn need values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !(self.matchExpressions[i].operator in ['Exists', 'DoesNotExist']) || !has(self.matchExpressions[i].values) || size(self.matchExpressions[i].values) == 0)",message="nodeSelectors: matchExpressions with operator Exists or DoesNotExist take no values"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchExpressions) || lists.range(16).all(i, i >= size(self.matchExpressions) || !format.qualifiedName().validate(self.matchExpressions[i].key).hasValue())",message="nodeSelectors: matchExpressions keys must be label keys: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
	// +kubebuilder:validation:items:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, !format.qualifiedName().validate(k).hasValue() && !format.labelValue().validate(self.matchLabels[k]).hasValue())",message="nodeSelectors: matchLabels keys must be label keys and values label values (at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit, or empty)"
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Peers names the BGPPeers (in Herald's namespace) the addresses are
	// announced to. Empty means every peer of the announcing node. Same as
	// MetalLB's spec.peers.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Peers []string `json:"peers,omitempty"`
}

// BGPAdvertisement announces the addresses of some pools over BGP. Same as
// MetalLB's BGPAdvertisement. Without any BGPAdvertisement (or
// L2Advertisement) an allocated address is not announced at all.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgpadv,categories=herald
// +kubebuilder:printcolumn:name="IP Address Pools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IP Address Pool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`,priority=10
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Communities",type=string,JSONPath=`.spec.communities`,priority=10
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=10
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says what is announced, to whom and how. An empty spec announces
	// every pool from every node to every peer, one route per address.
	// +optional
	Spec BGPAdvertisementSpec `json:"spec,omitempty"`

	// Status is written by the controller: whether the object is in force.
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// BGPAdvertisementList is a list of BGPAdvertisement.
//
// +kubebuilder:object:root=true
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAdvertisement `json:"items"`
}
