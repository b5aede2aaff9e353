package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/test/netlab"
)

// The Services' target ports (services.yaml): web on 8080, api on 8443.
var backendPorts = map[string]int32{"web-prefer": 8080, "web-require": 8080, "api": 8443}

// startBackends gives every node a pod network slice and one backend pod
// with an HTTP server, and runs a real kube-proxy (nftables) per node.
func (d *demo) startBackends() error {
	nodes := []string{"node1", "node2", "node3"}
	if err := d.lab.EnablePods(nodes...); err != nil {
		return err
	}
	for _, n := range nodes {
		p, err := d.lab.AddPod(n, "web-"+n)
		if err != nil {
			return err
		}
		d.st.Namespaces = append(d.st.Namespaces, p.NS)
		for _, port := range []int{8080, 8443} {
			if err := p.Serve(port); err != nil {
				return err
			}
		}
		d.pods[n] = p
	}
	var kps []*netlab.KubeProxy
	for _, n := range nodes {
		kp, err := d.lab.StartKubeProxy(filepath.Join(d.assets, "kube-proxy"), d.kubeconfig, n, netlab.PodCIDR4, netlab.PodCIDR6)
		if err != nil {
			return err
		}
		d.st.PIDs = append(d.st.PIDs, kp.Cmd.Process.Pid)
		kps = append(kps, kp)
	}
	if err := d.save(); err != nil {
		return err
	}
	for _, kp := range kps {
		if err := kp.WaitHealthy(30 * time.Second); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		p := d.pods[n]
		d.note("pod web-%s  %-16s %-22s HTTP :8080 and :8443, kube-proxy (nftables) on %s", n, p.V4, p.V6, n)
	}
	return nil
}

// curlAll runs curl from the client against every address of every
// LoadBalancer Service and prints which backend answered.
func (d *demo) curlAll(ctx context.Context) {
	var svcs corev1.ServiceList
	if err := d.c.List(ctx, &svcs, client.InNamespace("default")); err != nil {
		d.note("curl: %v", err)
		return
	}
	sort.Slice(svcs.Items, func(i, j int) bool { return svcs.Items[i].Name < svcs.Items[j].Name })
	fmt.Println()
	for _, s := range svcs.Items {
		if len(s.Spec.Ports) == 0 {
			continue
		}
		port := uint16(s.Spec.Ports[0].Port)
		for _, in := range s.Status.LoadBalancer.Ingress {
			a, err := netip.ParseAddr(in.IP)
			if err != nil {
				continue
			}
			var ans netlab.Answer
			deadline := time.Now().Add(15 * time.Second)
			for {
				if ans, err = d.lab.Host("client").Curl(a, int(port), 2*time.Second); err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			u := "http://" + netip.AddrPortFrom(a, port).String() + "/"
			if err != nil {
				d.note("curl %-28s %-12s no answer: %v", u, s.Name, firstLine(err.Error()))
				continue
			}
			d.note("curl %-28s %-12s answered by pod %s on %s", u, s.Name, ans.Pod, ans.Node)
		}
	}
}

// killOwner sends 200 new connections/s to addr from the client while the
// speaker announcing it is killed, and prints what that cost in requests.
func (d *demo) killOwner(ip string) error {
	owner, err := d.answer(ip)
	if err != nil {
		return err
	}
	d.say("Failover in requests: 200 new connections/s to %s while %s's speaker is SIGKILLed", ip, owner)
	done := make(chan netlab.LoadResult, 1)
	errc := make(chan error, 1)
	go func() {
		res, err := d.lab.Host("client").Load(netlab.LoadConfig{Target: netip.AddrPortFrom(netip.MustParseAddr(ip), 80), Rate: 200, Duration: 5 * time.Second})
		errc <- err
		done <- res
	}()
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	d.speakers[owner].Kill()
	if err := <-errc; err != nil {
		return err
	}
	res := <-done
	var newOwner string
	for range 20 {
		if newOwner, err = d.answer(ip); err == nil && newOwner != owner {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.note("killed %s's speaker at +1.5 s; %s now answers ARP for %s", owner, newOwner, ip)
	d.note("requests: %d sent, %d failed, %d later than 200 ms, longest gap between prompt answers %s (kill to end %s)",
		len(res.Requests), res.Failed, res.Late, res.LongestGap.Round(time.Millisecond), time.Since(killed).Round(100*time.Millisecond))
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
