package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CommunitySpec lists named BGP community values.
type CommunitySpec struct {
	// Communities are the named values; names are unique within the object.
	// A BGPAdvertisement refers to a value by its name in spec.communities.
	// Same as MetalLB's spec.communities.
	//
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Communities []CommunityAlias `json:"communities,omitempty"`
}

// CommunityAlias gives a BGP community value a name.
type CommunityAlias struct {
	// Name is what BGPAdvertisements write in spec.communities instead of the
	// value: lowercase letters, digits and '-', starting with a letter, at
	// most 63 characters. Same as MetalLB's communities[].name.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="communities[].name must be lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
	Name string `json:"name"`

	// Value is the community: a standard community "A:B" (A and B 0 to 65535,
	// e.g. 65000:100) or a large community "large:A:B:C" (A, B and C 0 to
	// 4294967295). Same as MetalLB's communities[].value.
	//
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+:[0-9]+$') || self.matches('^large:[0-9]+:[0-9]+:[0-9]+$')",messageExpression="'communities[].value: ' + self + ' is neither a community (65000:100) nor a large community (large:1:2:3)'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]+:[0-9]+$') || self.split(':').all(p, size(p) <= 5 && int(p) <= 65535)",messageExpression="'communities[].value: ' + self + ' has a part above 65535'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^large:[0-9]+:[0-9]+:[0-9]+$') || self.split(':').all(p, p == 'large' || (size(p) <= 10 && int(p) <= 4294967295))",messageExpression="'communities[].value: ' + self + ' has a part above 4294967295'"
	Value string `json:"value"`
}

// Community names BGP community values so that BGPAdvertisements can refer to
// them by name. Same as MetalLB's Community.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=comm,categories=herald
// +kubebuilder:printcolumn:name="Communities",type=string,JSONPath=`.spec.communities`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec lists the named values.
	// +optional
	Spec CommunitySpec `json:"spec,omitempty"`

	// Status is written by the controller: whether the object is in force.
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// CommunityList is a list of Community.
//
// +kubebuilder:object:root=true
type CommunityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Community `json:"items"`
}
