package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// L2AdvertisementSpec says which pools' addresses are announced over layer 2
// (ARP for IPv4, NDP for IPv6), from which nodes and on which interfaces.
type L2AdvertisementSpec struct {
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

	// NodeSelectors select, by the Nodes' labels, the nodes that may answer for
	// the addresses. A node matching any selector qualifies; empty means every
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

	// Interfaces names the network interfaces of the node on which ARP and NDP
	// are answered and gratuitous announcements sent (exact Linux names such as
	// eth0 or bond0.100). Empty means every interface of the node. Same as
	// MetalLB's spec.interfaces.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[!-~]+$') && !self.contains('/') && !self.contains(':') && self != '.' && self != '..'",message="interfaces: a Linux interface name is 1 to 15 visible ASCII characters without '/' or ':', and not '.' or '..'"
	Interfaces []string `json:"interfaces,omitempty"`
}

// L2Advertisement announces the addresses of some pools over layer 2: one node
// per address answers ARP/NDP for it. Same as MetalLB's L2Advertisement.
// Without any L2Advertisement (or BGPAdvertisement) an allocated address is
// not announced at all.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=l2adv,categories=herald
// +kubebuilder:printcolumn:name="IP Address Pools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IP Address Pool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`,priority=10
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.spec.interfaces`
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=10
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says what is announced, from where. An empty spec announces every
	// pool from every node on every interface.
	// +optional
	Spec L2AdvertisementSpec `json:"spec,omitempty"`

	// Status is written by the controller: whether the object is in force.
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// L2AdvertisementList is a list of L2Advertisement.
//
// +kubebuilder:object:root=true
type L2AdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []L2Advertisement `json:"items"`
}
