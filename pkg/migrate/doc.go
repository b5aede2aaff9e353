// Package migrate turns MetalLB's configuration into Herald's: the metallb.io
// custom resources (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer
// v1beta1 and v1beta2, Community, BFDProfile and the deprecated AddressPool)
// and the ConfigMap format MetalLB read before version 0.13.
//
// It is pure: documents in, Herald objects and warnings out. Herald's kinds
// have MetalLB's field names, so most of the work is a change of group and
// namespace; the rest is the settings Herald does not have, each of which
// yields a Warning naming the object and field, and the spellings Herald
// rejects where MetalLB was lenient (host bits in a CIDR, names that are not
// valid object names), which are rewritten with a Warning too. Nothing is
// dropped silently: a field this package does not know is reported as well.
//
// The result is meant to be checked with config.Build before it is applied,
// as heraldctl does.
package migrate
