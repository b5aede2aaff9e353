package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFDProfileSpec holds the settings of BFD sessions (RFC 5880) run alongside
// BGP sessions.
type BFDProfileSpec struct {
	// ReceiveInterval is the minimum interval, in milliseconds, at which this
	// end wants to receive BFD control packets, 10 to 60000. Defaults to 300.
	// Same as MetalLB's spec.receiveInterval.
	//
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	ReceiveInterval *uint32 `json:"receiveInterval,omitempty"`

	// TransmitInterval is the minimum interval, in milliseconds, at which this
	// end sends BFD control packets, 10 to 60000. Defaults to 300. Same as
	// MetalLB's spec.transmitInterval.
	//
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	TransmitInterval *uint32 `json:"transmitInterval,omitempty"`

	// DetectMultiplier is how many control packets may be missed before the
	// session is declared down, 2 to 255: detection takes about the
	// multiplier times the negotiated receive interval. Defaults to 3. Same as
	// MetalLB's spec.detectMultiplier.
	//
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	DetectMultiplier *uint32 `json:"detectMultiplier,omitempty"`

	// PassiveMode makes this end wait for the router to start the BFD session
	// instead of sending control packets first. Defaults to false. Same as
	// MetalLB's spec.passiveMode.
	//
	// +optional
	PassiveMode *bool `json:"passiveMode,omitempty"`

	// MinimumTTL is the lowest TTL accepted on incoming control packets of
	// multi-hop sessions, 1 to 254; single-hop sessions always require 255.
	// Defaults to 254 (the router is at most one hop away). Same as MetalLB's
	// spec.minimumTtl.
	//
	// +optional
	// +kubebuilder:default=254
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=254
	MinimumTTL *uint32 `json:"minimumTtl,omitempty"`
}

// BFDProfile is a named set of BFD settings that BGPPeers refer to with
// spec.bfdProfile. Same as MetalLB's BFDProfile, without the echo mode
// (echoMode, echoInterval), which Herald's BFD implementation does not offer.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bfdp,categories=herald
// +kubebuilder:printcolumn:name="Passive Mode",type=boolean,JSONPath=`.spec.passiveMode`
// +kubebuilder:printcolumn:name="Transmit Interval",type=integer,JSONPath=`.spec.transmitInterval`
// +kubebuilder:printcolumn:name="Receive Interval",type=integer,JSONPath=`.spec.receiveInterval`
// +kubebuilder:printcolumn:name="Multiplier",type=integer,JSONPath=`.spec.detectMultiplier`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BFDProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the BFD settings; an empty spec means every default.
	// +optional
	Spec BFDProfileSpec `json:"spec,omitempty"`

	// Status is written by the controller: whether the object is in force.
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// BFDProfileList is a list of BFDProfile.
//
// +kubebuilder:object:root=true
type BFDProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BFDProfile `json:"items"`
}
