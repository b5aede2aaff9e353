package speaker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/announce"
)

// LabelNode marks the status objects a speaker owns.
const LabelNode = "lb.herald.dev/node"

func labelsSet(m map[string]string) labels.Set { return labels.Set(m) }

// statusName is stable per (kind, node, Service) and always a valid name,
// however long the node and Service names are.
func statusName(kind, node, svcKey string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(node + "\x00" + svcKey))
	n := node
	if len(n) > 40 {
		n = n[:40]
	}
	return strings.TrimRight(fmt.Sprintf("%s-%s-%08x", kind, strings.ToLower(n), h.Sum32()), "-.")
}

type l2Want struct {
	addrs, ifaces []string
}

type bgpWant struct {
	addrs, peers []string
}

// writeStatus converges this node's ServiceL2Status and ServiceBGPStatus
// objects to the plan: one object per Service this node announces.
func (s *Speaker) writeStatus(ctx context.Context, plan announce.Plan, svcs []announce.Service) error {
	l2, bgpw := wantStatus(plan, svcs)
	sel := client.MatchingLabels{LabelNode: labelValue(s.opts.NodeName)}
	return s.applyStatus(ctx, sel, l2, bgpw)
}

// wantStatus is what this node's status objects must say, per Service.
func wantStatus(plan announce.Plan, svcs []announce.Service) (map[string]*l2Want, map[string]*bgpWant) {
	addrsOf := make(map[string][]netip.Addr, len(svcs))
	for _, svc := range svcs {
		addrsOf[svc.Key] = svc.Addrs
	}
	l2 := map[string]*l2Want{}
	for a, e := range plan.L2 {
		for _, key := range e.Services {
			w := l2[key]
			if w == nil {
				w = &l2Want{}
				l2[key] = w
			}
			w.addrs = append(w.addrs, a.String())
			w.ifaces = append(w.ifaces, e.Interfaces...)
		}
	}
	bgpw := map[string]*bgpWant{}
	for _, r := range plan.BGP {
		for _, key := range r.Services {
			w := bgpw[key]
			if w == nil {
				w = &bgpWant{}
				bgpw[key] = w
			}
			// The status lists the Service's addresses, not the routes:
			// a route may be an aggregate covering several Services.
			for _, a := range addrsOf[key] {
				if r.Prefix.Contains(a) {
					w.addrs = append(w.addrs, a.String())
				}
			}
			w.peers = append(w.peers, r.Peers...)
		}
	}
	return l2, bgpw
}

func (s *Speaker) applyStatus(ctx context.Context, sel client.MatchingLabels, l2 map[string]*l2Want, bgpw map[string]*bgpWant) error {
	var errs []error

	var have2 v1beta1.ServiceL2StatusList
	if err := s.client.List(ctx, &have2, client.InNamespace(s.opts.Namespace), sel); err != nil {
		return fmt.Errorf("list ServiceL2Status: %w", err)
	}
	existing2 := map[string]*v1beta1.ServiceL2Status{}
	for i := range have2.Items {
		existing2[have2.Items[i].Name] = &have2.Items[i]
	}
	for key, w := range l2 {
		ns, name, _ := strings.Cut(key, "/")
		st := v1beta1.ServiceL2StatusStatus{Node: s.opts.NodeName, ServiceNamespace: ns, ServiceName: name, Addresses: sortedSet(w.addrs)}
		for _, i := range sortedSet(w.ifaces) {
			st.Interfaces = append(st.Interfaces, v1beta1.InterfaceInfo{Name: i})
		}
		objName := statusName("l2", s.opts.NodeName, key)
		obj, ok := existing2[objName]
		delete(existing2, objName)
		if ok && equalL2(obj.Status, st) {
			continue
		}
		if !ok {
			obj = &v1beta1.ServiceL2Status{}
			obj.Name, obj.Namespace = objName, s.opts.Namespace
			obj.Labels = map[string]string{LabelNode: labelValue(s.opts.NodeName)}
			if err := s.client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("create ServiceL2Status %s: %w", objName, err))
				continue
			}
		}
		obj.Status = st
		if err := s.client.Status().Update(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("update ServiceL2Status %s: %w", objName, err))
		}
	}
	for _, obj := range existing2 {
		if err := s.client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete ServiceL2Status %s: %w", obj.Name, err))
		}
	}

	var haveB v1beta1.ServiceBGPStatusList
	if err := s.client.List(ctx, &haveB, client.InNamespace(s.opts.Namespace), sel); err != nil {
		return errors.Join(append(errs, fmt.Errorf("list ServiceBGPStatus: %w", err))...)
	}
	existingB := map[string]*v1beta1.ServiceBGPStatus{}
	for i := range haveB.Items {
		existingB[haveB.Items[i].Name] = &haveB.Items[i]
	}
	for key, w := range bgpw {
		ns, name, _ := strings.Cut(key, "/")
		st := v1beta1.ServiceBGPStatusStatus{Node: s.opts.NodeName, ServiceNamespace: ns, ServiceName: name,
			Addresses: sortedSet(w.addrs), Peers: sortedSet(w.peers)}
		objName := statusName("bgp", s.opts.NodeName, key)
		obj, ok := existingB[objName]
		delete(existingB, objName)
		if ok && equalBGP(obj.Status, st) {
			continue
		}
		if !ok {
			obj = &v1beta1.ServiceBGPStatus{}
			obj.Name, obj.Namespace = objName, s.opts.Namespace
			obj.Labels = map[string]string{LabelNode: labelValue(s.opts.NodeName)}
			if err := s.client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("create ServiceBGPStatus %s: %w", objName, err))
				continue
			}
		}
		obj.Status = st
		if err := s.client.Status().Update(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("update ServiceBGPStatus %s: %w", objName, err))
		}
	}
	for _, obj := range existingB {
		if err := s.client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete ServiceBGPStatus %s: %w", obj.Name, err))
		}
	}
	return errors.Join(errs...)
}

// labelValue fits a node name into a label value (63 characters).
func labelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return fmt.Sprintf("%s-%08x", s[:54], h.Sum32())
}

func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func equalL2(a, b v1beta1.ServiceL2StatusStatus) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.Addresses, b.Addresses) && slices.Equal(a.Interfaces, b.Interfaces)
}

func equalBGP(a, b v1beta1.ServiceBGPStatusStatus) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.Addresses, b.Addresses) && slices.Equal(a.Peers, b.Peers)
}
