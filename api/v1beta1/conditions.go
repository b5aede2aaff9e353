package v1beta1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Condition types, reasons and Event reasons the controller writes on
// Herald's configuration objects and Services. They are public names: tools
// (heraldctl, alerts, scripts) match on them, so they live here, next to the
// API, and are spelled one way.
const (
	// ConditionValid is on every configuration object (IPAddressPool,
	// L2Advertisement, BGPPeer, BGPAdvertisement, Community, BFDProfile):
	// True when the object is in force as written, False with one of the
	// reasons below when it is disabled (or, for a dropped reference, in
	// force without that reference); the message names the other object.
	ConditionValid = "Valid"

	// ConditionOverlapsServiceCIDR is on IPAddressPools: True when some of
	// the pool's addresses lie inside a service CIDR of the cluster.
	ConditionOverlapsServiceCIDR = "OverlapsServiceCIDR"
)

// Reasons of the Valid condition.
const (
	// ReasonValid: the object is in force as written.
	ReasonValid = "Valid"
	// ReasonOverlapping: a pool's addresses overlap an older pool's; the
	// newer pool is frozen (gives no new addresses, keeps announcing what
	// Services hold from it). The message names the older pool.
	ReasonOverlapping = "Overlapping"
	// ReasonMissingReference: the object names an object that does not exist
	// (a pool, community, BGPPeer, BFD profile or password Secret).
	ReasonMissingReference = "MissingReference"
	// ReasonInvalidField: a field is invalid (from a file or an older schema
	// that did not check it); the object is disabled.
	ReasonInvalidField = "InvalidField"
	// ReasonInvalidPassword: a BGPPeer's password Secret lacks the key
	// "password", or the password is empty, only whitespace or longer than
	// 80 bytes; the peer opens no session.
	ReasonInvalidPassword = "InvalidPassword"
	// ReasonDuplicatePeer: an older BGPPeer has the same address and port for
	// some of the same nodes; the newer one opens no session.
	ReasonDuplicatePeer = "DuplicatePeer"
	// ReasonDuplicateName: a name is already defined by an older object (a
	// community name in another Community, or an object defined twice).
	ReasonDuplicateName = "DuplicateName"
)

// Event reasons the controller emits.
const (
	// EventConfigValid: a configuration object became valid again.
	EventConfigValid = "ConfigurationValid"
	// EventConfigInvalid: a configuration object became invalid; the note
	// says why.
	EventConfigInvalid = "ConfigurationInvalid"
	// EventConfigWarning: the object is in force but a setting has no effect.
	EventConfigWarning = "ConfigurationWarning"

	EventIPAllocated      = "IPAllocated"
	EventIPBackfilled     = "IPBackfilled"
	EventIPReleased       = "IPReleased"
	EventAllocationFailed = "AllocationFailed"
)

// ConfigStatus is the status of the configuration objects that carry no
// other status: only conditions, written by the controller.
type ConfigStatus struct {
	// Conditions report whether the object is in force (type Valid) and, if
	// not, why, naming the other object involved.
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConditionsOf returns the status conditions of a Herald configuration object
// (the six kinds), or nil for any other object.
func ConditionsOf(o any) *[]metav1.Condition {
	switch o := o.(type) {
	case *IPAddressPool:
		return &o.Status.Conditions
	case *L2Advertisement:
		return &o.Status.Conditions
	case *BGPAdvertisement:
		return &o.Status.Conditions
	case *BGPPeer:
		return &o.Status.Conditions
	case *Community:
		return &o.Status.Conditions
	case *BFDProfile:
		return &o.Status.Conditions
	}
	return nil
}
