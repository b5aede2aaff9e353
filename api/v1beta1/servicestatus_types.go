package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceL2StatusSpec is empty: the object only carries status. It exists so
// the kind has the usual spec/status shape, like MetalLB's.
type ServiceL2StatusSpec struct{}

// InterfaceInfo names one network interface of a node.
type InterfaceInfo struct {
	// Name is the Linux interface name, such as eth0.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
}

// ServiceL2StatusStatus says which node answers ARP/NDP for a Service's
// addresses, and on which interfaces.
type ServiceL2StatusStatus struct {
	// Node is the name of the node whose speaker answers for the addresses.
	// Same as MetalLB's status.node.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`

	// ServiceName is the name of the Service. Same as MetalLB's
	// status.serviceName.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ServiceName string `json:"serviceName,omitempty"`

	// ServiceNamespace is the namespace of the Service. Same as MetalLB's
	// status.serviceNamespace.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ServiceNamespace string `json:"serviceNamespace,omitempty"`

	// Addresses are the Service's addresses this node answers for: usually
	// all of them, but the two families of a dual-stack Service can land on
	// different nodes, each with its own ServiceL2Status. Herald's addition to
	// MetalLB's shape.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:items:XValidation:rule="isIP(self)",message="addresses: each entry must be an IPv4 or IPv6 address"
	Addresses []string `json:"addresses,omitempty"`

	// Interfaces are the node's interfaces on which the speaker answers. Same
	// as MetalLB's status.interfaces.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Interfaces []InterfaceInfo `json:"interfaces,omitempty"`
}

// ServiceL2Status records, for one Service and one node, that the node's
// speaker answers ARP/NDP for the Service's addresses. Speakers write these
// objects for people and tools to read; Herald never reads them back to make
// decisions. Same as MetalLB's ServiceL2Status.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sl2s,categories=herald
// +kubebuilder:printcolumn:name="Allocated Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Service Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.status.addresses`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceL2Status struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is empty.
	// +optional
	Spec ServiceL2StatusSpec `json:"spec,omitempty"`

	// Status is written by the speaker that answers for the Service.
	// +optional
	Status ServiceL2StatusStatus `json:"status,omitempty"`
}

// ServiceL2StatusList is a list of ServiceL2Status.
//
// +kubebuilder:object:root=true
type ServiceL2StatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceL2Status `json:"items"`
}

// ServiceBGPStatusSpec is empty: the object only carries status. It exists so
// the kind has the usual spec/status shape, like MetalLB's.
type ServiceBGPStatusSpec struct{}

// ServiceBGPStatusStatus says to which BGP peers a node announces a Service's
// addresses.
type ServiceBGPStatusStatus struct {
	// Node is the name of the node whose speaker announces the addresses.
	// Same as MetalLB's status.node.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`

	// ServiceName is the name of the Service. Same as MetalLB's
	// status.serviceName.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ServiceName string `json:"serviceName,omitempty"`

	// ServiceNamespace is the namespace of the Service. Same as MetalLB's
	// status.serviceNamespace.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ServiceNamespace string `json:"serviceNamespace,omitempty"`

	// Addresses are the Service's addresses the node announces. Herald's
	// addition to MetalLB's shape.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:items:XValidation:rule="isIP(self)",message="addresses: each entry must be an IPv4 or IPv6 address"
	Addresses []string `json:"addresses,omitempty"`

	// Peers names the BGPPeers the node announces the addresses to. Same as
	// MetalLB's status.peers.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	Peers []string `json:"peers,omitempty"`
}

// ServiceBGPStatus records, for one Service and one node, the BGP peers the
// node's speaker announces the Service's addresses to. Speakers write these
// objects for people and tools to read; Herald never reads them back to make
// decisions. Same as MetalLB's ServiceBGPStatus.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sbgps,categories=herald
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Service Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.status.peers`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceBGPStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is empty.
	// +optional
	Spec ServiceBGPStatusSpec `json:"spec,omitempty"`

	// Status is written by the speaker that announces the Service.
	// +optional
	Status ServiceBGPStatusStatus `json:"status,omitempty"`
}

// ServiceBGPStatusList is a list of ServiceBGPStatus.
//
// +kubebuilder:object:root=true
type ServiceBGPStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceBGPStatus `json:"items"`
}
