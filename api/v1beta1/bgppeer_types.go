package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGP counts its timers in whole seconds, so the duration fields accept only
// Go durations made of h, m and s parts (90s, 1m30s, 0). Every other rule on
// them first checks that format: a malformed value then gets the format
// message instead of a CEL evaluation error, and typed clients, which decode
// metav1.Duration with time.ParseDuration, can always read what is stored.

// BGPPeerSpec describes one BGP session that the selected nodes' speakers
// open to a router.
//
// +kubebuilder:validation:XValidation:rule="!has(self.holdTime) || !has(self.keepaliveTime) || !self.holdTime.matches('^(0|([0-9]+(h|m|s))+)$') || !self.keepaliveTime.matches('^(0|([0-9]+(h|m|s))+)$') || (duration(self.holdTime) == duration('0s') ? duration(self.keepaliveTime) == duration('0s') : (duration(self.keepaliveTime) > duration('0s') && duration(self.keepaliveTime) < duration(self.holdTime)))",fieldPath=".keepaliveTime",message="keepaliveTime must be more than 0s and less than holdTime, or 0s when holdTime is 0s"
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultiHop) || !self.ebgpMultiHop || self.myASN != self.peerASN",fieldPath=".ebgpMultiHop",message="ebgpMultiHop applies to eBGP sessions only; myASN equals peerASN"
// +kubebuilder:validation:XValidation:rule="!has(self.sourceAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()",fieldPath=".sourceAddress",message="sourceAddress must be of the same IP family as peerAddress"
type BGPPeerSpec struct {
	// MyASN is the autonomous system number the speaker uses on this session,
	// 1 to 4294967295 (4-byte ASNs are supported). Equal to peerASN for iBGP.
	// Same as MetalLB's spec.myASN.
	//
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MyASN uint32 `json:"myASN"`

	// PeerASN is the autonomous system number expected from the router,
	// 1 to 4294967295. Same as MetalLB's spec.peerASN.
	//
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	PeerASN uint32 `json:"peerASN"`

	// PeerAddress is the router's IPv4 or IPv6 address. Routes of both
	// families are exchanged on one session (multiprotocol BGP), whatever the
	// session's own family. Same as MetalLB's spec.peerAddress.
	//
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="peerAddress must be an IPv4 or IPv6 address without zone or prefix length"
	PeerAddress string `json:"peerAddress"`

	// PeerPort is the router's TCP port. Defaults to 179. Same as MetalLB's
	// spec.peerPort.
	//
	// +optional
	// +kubebuilder:default=179
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	PeerPort uint16 `json:"peerPort,omitempty"`

	// SourceAddress is the local address the session is opened from, of the
	// same family as peerAddress. Unset, the node's routing picks it. Same as
	// MetalLB's spec.sourceAddress.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="sourceAddress must be an IPv4 or IPv6 address without zone or prefix length"
	SourceAddress string `json:"sourceAddress,omitempty"`

	// RouterID is the BGP identifier the speaker uses on this session, an IPv4
	// address. Unset, the speaker derives one from the node. Same as MetalLB's
	// spec.routerID.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="routerID must be an IPv4 address"
	RouterID string `json:"routerID,omitempty"`

	// HoldTime is the BGP hold time proposed to the router: the session is
	// dropped when nothing arrives for this long. 0s disables keepalives
	// altogether; otherwise 3s to 65535s. Whole seconds, written with the
	// units h, m and s (90s, 1m30s). Defaults to 90s. Same as MetalLB's
	// spec.holdTime.
	//
	// +optional
	// +kubebuilder:default="90s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(h|m|s))+)$')",message="holdTime must be whole seconds written with the units h, m and s, such as 90s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(0|([0-9]+(h|m|s))+)$') || duration(self) == duration('0s') || (duration(self) >= duration('3s') && duration(self) <= duration('65535s'))",message="holdTime must be 0s or between 3s and 65535s"
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the interval between BGP keepalive messages: more than
	// 0s and less than holdTime (0s only when holdTime is 0s), whole seconds
	// written with the units h, m and s. Unset, it is a third of the hold
	// time. Same as MetalLB's
	// spec.keepaliveTime.
	//
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(h|m|s))+)$')",message="keepaliveTime must be whole seconds written with the units h, m and s, such as 30s"
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long the speaker waits between attempts to open the
	// session, 1s to 65535s, whole seconds written with the units h, m and s.
	// Unset leaves the choice to the
	// speaker. Same as MetalLB's spec.connectTime.
	//
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(h|m|s))+)$')",message="connectTime must be whole seconds written with the units h, m and s, such as 10s"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(0|([0-9]+(h|m|s))+)$') || (duration(self) >= duration('1s') && duration(self) <= duration('65535s'))",message="connectTime must be between 1s and 65535s"
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// PasswordSecret names the Secret holding the TCP MD5 password of the
	// session (RFC 2385), under the key "password"; the Secret should be of
	// type kubernetes.io/basic-auth. It must live in Herald's namespace: an
	// empty namespace means that one, and any other namespace is refused when
	// the configuration is loaded. Unset, the session is not authenticated.
	// Same as MetalLB's spec.passwordSecret; MetalLB's plain-text
	// spec.password is deliberately not offered, so passwords never sit in
	// the object itself.
	//
	// +optional
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="passwordSecret.name must be set"
	PasswordSecret *corev1.SecretReference `json:"passwordSecret,omitempty"`

	// EBGPMultiHop allows the router to be more than one hop away (an eBGP
	// session with a TTL above 1). Only for eBGP (myASN differs from peerASN).
	// Same as MetalLB's spec.ebgpMultiHop.
	//
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`

	// MaxReceivedPrefixes bounds, per address family, the paths the router
	// may send to the speaker (Herald exports only and rejects every
	// received path, but holds them first: ≈ 1.1 KiB each). A router that
	// sends more has its session closed (Cease, maximum number of prefixes)
	// and held down for 30 s, doubling on each repeat up to 10 min, so a
	// full table can never exhaust the speaker. Default 5000. Herald
	// extension; MetalLB has no such field. Better: filter on the router so
	// it exports nothing to Herald's sessions.
	//
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	MaxReceivedPrefixes *int32 `json:"maxReceivedPrefixes,omitempty"`

	// EnableGracefulRestart turns on BGP graceful restart (RFC 4724), so the
	// router keeps the speaker's routes while the speaker restarts. Same as
	// MetalLB's spec.enableGracefulRestart.
	//
	// +optional
	EnableGracefulRestart bool `json:"enableGracefulRestart,omitempty"`

	// BFDProfile names a BFDProfile (in Herald's namespace) whose settings run
	// a BFD session alongside the BGP session, for sub-second failure
	// detection. Unset, no BFD. Same as MetalLB's spec.bfdProfile.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	BFDProfile string `json:"bfdProfile,omitempty"`

	// NodeSelectors select, by the Nodes' labels, the nodes whose speakers open
	// this session. A node matching any selector qualifies; empty means every
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
}

// BGPPeer is a router that the speakers of the selected nodes peer with over
// BGP to announce Service addresses. Same as MetalLB's BGPPeer (metallb.io
// v1beta2); MetalLB's password, dynamicASN, vrf and disableMP fields are not
// offered.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgpp,categories=herald
// +kubebuilder:printcolumn:name="Peer Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="My ASN",type=integer,JSONPath=`.spec.myASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`
// +kubebuilder:printcolumn:name="Multi Hops",type=boolean,JSONPath=`.spec.ebgpMultiHop`,priority=10
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the session.
	// +required
	Spec BGPPeerSpec `json:"spec"`

	// Status is written by the controller: whether the object is in force.
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeer.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}
