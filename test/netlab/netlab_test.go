package netlab

import (
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
