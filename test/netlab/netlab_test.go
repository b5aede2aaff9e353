package netlab

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestLabHostsReachEachOtherAndCloseRemovesEveryNamespace(t *testing.T) {
	if why := Available(); why != "" {
		t.Skip(why)
	}
	lab, err := New(Standard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	c := lab.Host("client")
	for _, dst := range []string{lab.Host("node1").Addr4().String(), lab.Host("router").Addr6().String()} {
		if out, err := c.Output("ping", "-c1", "-W2", dst); err != nil {
			t.Fatalf("ping %s: %v\n%s", dst, err, out)
		}
	}
	names := append([]string(nil), lab.order...)
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			t.Errorf("namespace %s still exists after Close", n)
		}
		if !strings.HasPrefix(n, lab.Prefix) {
			t.Errorf("namespace %s lacks the lab prefix %s", n, lab.Prefix)
		}
	}
}

func TestForwardLoopbackReachesTheTestProcessFromInsideANamespace(t *testing.T) {
	if why := Available(); why != "" {
		t.Skip(why)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello from the host namespace\n"))
			c.Close()
		}
	}()
	lab, err := New(Standard()[:1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	n := lab.Host("node1")
	if _, err := n.ForwardLoopback("127.0.0.1:16443", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	out, err := n.Output("curl", "-s", "--max-time", "5", "telnet://127.0.0.1:16443")
	if err != nil && !strings.Contains(out, "hello") {
		t.Fatalf("curl through the forwarder: %v: %s", err, out)
	}
	if !strings.Contains(out, "hello from the host namespace") {
		t.Fatalf("got %q through the forwarder", out)
	}
}
