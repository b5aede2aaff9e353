package heraldctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/controller"
)

// Output formats of status.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// printReport writes r in the given format.
func printReport(w io.Writer, r Report, format string) error {
	switch format {
	case formatJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case formatYAML:
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case formatTable:
		return printTable(w, r)
	}
	return fmt.Errorf("output format %q: want table, json or yaml", format)
}

// printTable writes two aligned tables. A Service with several addresses or
// announcements takes several lines, one item per line, so columns stay
// narrow; the free-text columns come last, where their length does not push
// the others around.
func printTable(w io.Writer, r Report) error {
	var buf bytes.Buffer
	if err := printServices(&buf, r.Services); err != nil {
		return err
	}
	buf.WriteByte('\n')
	if err := printPools(&buf, r.Pools); err != nil {
		return err
	}
	if len(r.Disabled) > 0 {
		buf.WriteByte('\n')
		tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DISABLED\tREASON\tMESSAGE")
		for _, d := range r.Disabled {
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\n", d.Kind, d.Name, d.Reason, d.Message)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	// tabwriter pads empty last cells of continuation lines; drop that.
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \n")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

func printServices(w io.Writer, services []ServiceReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPOLICY\tFAMILIES\tADDRESSES\tPOOL\tANNOUNCED BY\tSTATE")
	if len(services) == 0 {
		fmt.Fprintln(tw, "(no LoadBalancer Services)")
	}
	for _, s := range services {
		addrs := s.Addresses
		announced := announcements(s)
		lines := max(len(addrs), len(announced), 1)
		for i := range lines {
			var cols [8]string
			if i == 0 {
				cols = [8]string{s.Namespace, s.Name, dash(s.IPFamilyPolicy), dash(strings.Join(s.IPFamilies, ",")), "", dash(s.Pool), "", serviceState(s)}
			}
			cols[4] = item(addrs, i, len(addrs) == 0)
			cols[6] = item(announced, i, len(announced) == 0)
			fmt.Fprintln(tw, strings.Join(cols[:], "\t"))
		}
	}
	return tw.Flush()
}

func printPools(w io.Writer, pools []PoolReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tADDRESSES\tAUTO-ASSIGN\tIPV4 ASSIGNED\tIPV4 AVAILABLE\tIPV6 ASSIGNED\tIPV6 AVAILABLE\tVALID\tMESSAGE")
	if len(pools) == 0 {
		fmt.Fprintln(tw, "(no IPAddressPools)")
	}
	for _, p := range pools {
		for i := range max(len(p.Addresses), 1) {
			var cols [9]string
			if i == 0 {
				a4, v4 := familyColumns(p.IPv4)
				a6, v6 := familyColumns(p.IPv6)
				cols = [9]string{p.Name, "", yesNo(p.AutoAssign), a4, v4, a6, v6, poolReady(p), poolMessage(p)}
			}
			cols[1] = item(p.Addresses, i, len(p.Addresses) == 0)
			fmt.Fprintln(tw, strings.Join(cols[:], "\t"))
		}
	}
	return tw.Flush()
}

// item is the i-th entry of a multi-line cell; a cell with no entries
// shows "-" on its first line.
func item(list []string, i int, empty bool) string {
	switch {
	case i < len(list):
		return list[i]
	case empty && i == 0:
		return "-"
	}
	return ""
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// announcements describes who announces the Service, one line per node and
// protocol. Addresses are named only when a node announces some of the
// Service's addresses but not all (the families of a dual-stack Service
// may land on different nodes).
func announcements(s ServiceReport) []string {
	var out []string
	only := func(addrs []string) string {
		if len(addrs) == 0 || sameSet(addrs, s.Addresses) {
			return ""
		}
		return " for " + strings.Join(addrs, ",")
	}
	for _, a := range s.Layer2 {
		line := "L2 " + a.Node
		if len(a.Interfaces) > 0 {
			line += " on " + strings.Join(a.Interfaces, ",")
		}
		out = append(out, line+only(a.Addresses))
	}
	for _, a := range s.BGP {
		line := "BGP " + a.Node
		if len(a.Peers) > 0 {
			line += " to " + strings.Join(a.Peers, ",")
		} else {
			line += " to no peer"
		}
		out = append(out, line+only(a.Addresses))
	}
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// serviceState is the STATE column: the condition's reason, and for a
// Service that is not complete, what is missing and why.
func serviceState(s ServiceReport) string {
	if s.State == controller.ReasonComplete && len(s.MissingFamilies) == 0 && !s.Outdated {
		return s.State
	}
	out := s.State
	if len(s.MissingFamilies) > 0 {
		out += " (missing " + strings.Join(s.MissingFamilies, ",") + ")"
	}
	switch {
	case s.State == StateUnknown:
		out += ": Herald has not handled this Service (no " + controller.ConditionAddressesComplete + " condition)"
	case s.Message != "" && s.State != controller.ReasonComplete:
		out += ": " + s.Message
	}
	if s.Outdated {
		out += " [condition is for an older generation of the Service]"
	}
	return out
}

func familyColumns(u *FamilyUsage) (assigned, available string) {
	if u == nil {
		return "-", "-"
	}
	return strconv.FormatInt(u.Assigned, 10), count(u.Available)
}

// count prints an address count; the saturated maximum is shown for what
// it means rather than as a 19-digit number.
func count(n int64) string {
	if n == math.MaxInt64 {
		return ">9.2e18"
	}
	return strconv.FormatInt(n, 10)
}

func poolReady(p PoolReport) string {
	for _, c := range p.Conditions {
		if c.Type == controller.ConditionValid && c.Status != "True" && c.Reason != "" {
			return c.Status + " (" + c.Reason + ")"
		}
	}
	return p.Ready
}

// poolMessage collects the messages of the conditions that report a
// problem: Ready other than True, and an overlap with the service CIDRs.
func poolMessage(p PoolReport) string {
	var msgs []string
	for _, c := range p.Conditions {
		bad := (c.Type == controller.ConditionValid && c.Status != "True") ||
			(c.Type == controller.PoolConditionOverlapsServiceCIDR && c.Status == "True")
		if bad && c.Message != "" {
			msgs = append(msgs, c.Message)
		}
	}
	return strings.Join(msgs, "; ")
}
