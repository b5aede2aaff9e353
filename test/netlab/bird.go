package netlab

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// BIRDConfig is a BIRD 2 router: BGP sessions that import everything and
// export nothing, and kernel protocols that install the best routes (ECMP
// merged) into the namespace's FIB.
type BIRDConfig struct {
	ASN       uint32
	RouterID  netip.Addr
	Neighbors []BIRDNeighbor
}

// BIRDNeighbor is one BGP session; Name is its BIRD protocol name.
type BIRDNeighbor struct {
	Name          string
	Address       netip.Addr
	ASN           uint32
	Password      string
	Multihop      bool
	HoldTime      time.Duration // 0 = 9 s
	KeepaliveTime time.Duration // 0 = 3 s
}

// BIRD is a bird daemon running in one host's namespace with its control
// socket, pid file and log in a private directory.
type BIRD struct {
	Host *Host
	Dir  string
	proc *Proc
}

const birdConf = `log "{{.Dir}}/bird.log" all;
timeformat protocol iso long ms;
timeformat route iso long ms;
timeformat log "%F %T.%6f";
router id {{.RouterID}};

protocol device { scan time 10; }
protocol kernel k4 { ipv4 { import none; export all; }; merge paths on; }
protocol kernel k6 { ipv6 { import none; export all; }; merge paths on; }
{{range .Neighbors}}
protocol bgp {{.Name}} {
  local as {{$.ASN}};
  neighbor {{.Address}} as {{.ASN}};
  hold time {{secs .HoldTime 9}};
  keepalive time {{secs .KeepaliveTime 3}};
  # BIRD's defaults (5 s before the first connect, 120 s between retries,
  # 60-300 s after an error) are far too slow for tests.
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 5;
{{- if .Password}}
  password "{{.Password}}";
{{- end}}
{{- if .Multihop}}
  multihop;
{{- end}}
  # eBGP needs explicit filters (RFC 8212). Both families on every session.
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
{{end}}`

// StartBIRD starts bird in the foreground in the host's namespace and waits
// for its control socket. Close (or lab.Close) stops it.
func (h *Host) StartBIRD(cfg BIRDConfig) (b *BIRD, err error) {
	dir, err := os.MkdirTemp("", "herald-bird-"+h.Spec.Name+"-")
	if err != nil {
		return nil, err
	}
	b = &BIRD{Host: h, Dir: dir}
	defer func() {
		if err != nil {
			b.Close()
			b = nil
		}
	}()
	var buf bytes.Buffer
	data := struct {
		BIRDConfig
		Dir string
	}{cfg, dir}
	if err := template.Must(template.New("bird").Funcs(frrFuncs).Parse(birdConf)).Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render bird.conf: %w", err)
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	p, err := h.Start("bird", "-f", "-c", conf, "-s", b.ctl(), "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return nil, err
	}
	b.proc = p
	if err := waitSocket(p, b.ctl(), 10*time.Second); err != nil {
		return nil, fmt.Errorf("bird in %s: %w", h.NS, err)
	}
	return b, nil
}

func (b *BIRD) ctl() string { return filepath.Join(b.Dir, "bird.ctl") }

// Close stops bird and deletes its directory.
func (b *BIRD) Close() {
	if b.proc != nil {
		b.proc.Stop()
		b.proc = nil
	}
	if b.Dir != "" {
		_ = os.RemoveAll(b.Dir)
	}
}

// Birdc runs one birdc command (the control socket is a file, so birdc
// needs no namespace).
func (b *BIRD) Birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.ctl()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s in %s: %w: %s", strings.Join(args, " "), b.Host.NS, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Log returns bird's log file.
func (b *BIRD) Log() (string, error) {
	out, err := os.ReadFile(filepath.Join(b.Dir, "bird.log"))
	return string(out), err
}

// BIRDRoute is one route of `birdc show route all`.
type BIRDRoute struct {
	Prefix   netip.Prefix
	Protocol string // the BGP protocol (neighbour) it came from
	Primary  bool   // BIRD's best route ("*")
	NextHops []netip.Addr
	Attrs    map[string]string // "BGP.next_hop", "BGP.community", ...
}

// Routes parses `birdc show route all`.
func (b *BIRD) Routes() ([]BIRDRoute, error) {
	out, err := b.Birdc("show", "route", "all")
	if err != nil {
		return nil, err
	}
	return parseBIRDRoutes(out), nil
}

// parseBIRDRoutes reads BIRD 2's route listing:
//
//	198.51.100.10/32     unicast [node1 2026-11-24 12:00:00.000] * (100) [AS64501i]
//		via 192.0.2.11 on eth0
//		Type: BGP univ
//		BGP.next_hop: 192.0.2.11
//	                     unicast [node2 ...] (100) [AS64501i]
//
// A line starting in column 0 names a new prefix; an indented line starting
// with a route type continues the same prefix with another route.
func parseBIRDRoutes(out string) []BIRDRoute {
	var routes []BIRDRoute
	var cur *BIRDRoute
	var prefix netip.Prefix
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(line, "BIRD ") || strings.HasPrefix(line, "Table ") {
			continue
		}
		fields := strings.Fields(trim)
		startsRoute := false
		if line[0] != ' ' && line[0] != '\t' {
			if p, err := netip.ParsePrefix(fields[0]); err == nil {
				prefix = p
				fields = fields[1:]
				startsRoute = true
			}
		} else if len(fields) > 1 && strings.HasPrefix(fields[1], "[") && !strings.HasSuffix(fields[0], ":") {
			startsRoute = true // e.g. "unicast [node2 ...]"
		}
		if startsRoute {
			routes = append(routes, BIRDRoute{Prefix: prefix, Attrs: map[string]string{}})
			cur = &routes[len(routes)-1]
			for i, f := range fields {
				if strings.HasPrefix(f, "[") && cur.Protocol == "" {
					cur.Protocol = strings.TrimPrefix(f, "[")
				}
				if f == "*" && i > 0 {
					cur.Primary = true
				}
			}
			continue
		}
		if cur == nil {
			continue
		}
		if fields[0] == "via" && len(fields) > 1 {
			if a, err := netip.ParseAddr(fields[1]); err == nil {
				cur.NextHops = append(cur.NextHops, a)
			}
			continue
		}
		if k, v, ok := strings.Cut(trim, ": "); ok {
			cur.Attrs[k] = v
		}
	}
	return routes
}

// BIRDProtocol is one line of `birdc show protocols`.
type BIRDProtocol struct {
	Name, Proto, State, Info string
}

// Protocols returns bird's protocols by name; a BGP session is up when
// State is "up" and Info "Established".
func (b *BIRD) Protocols() (map[string]BIRDProtocol, error) {
	out, err := b.Birdc("show", "protocols")
	if err != nil {
		return nil, err
	}
	res := map[string]BIRDProtocol{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "Name" || f[0] == "BIRD" {
			continue
		}
		// Name Proto Table State Since[date time] Info...
		p := BIRDProtocol{Name: f[0], Proto: f[1], State: f[3]}
		if len(f) > 6 {
			p.Info = strings.Join(f[6:], " ")
		}
		res[p.Name] = p
	}
	return res, nil
}
