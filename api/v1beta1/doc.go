// Package v1beta1 holds Herald's API: the lb.herald.dev/v1beta1 custom
// resources that configure address pools and their announcement over layer 2
// and BGP, and the status objects the speakers write.
//
// The kinds and field names follow MetalLB's metallb.io v1beta1/v1beta2 API so
// that a MetalLB configuration translates by changing the apiVersion. Every rule
// that one object can check lives in the CRD schema (OpenAPI and CEL
// x-kubernetes-validations), so a bad object is rejected when it is applied;
// rules that span objects are checked by pkg/config and reported as status
// conditions and Events.
//
// All kinds are namespaced and live in Herald's own namespace (herald-system
// by default), like MetalLB's.
//
// +kubebuilder:object:generate=true
// +groupName=lb.herald.dev
package v1beta1
