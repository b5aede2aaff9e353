// Package heraldctl is the command-line tool for Herald's users: status
// shows what Herald did with the cluster's LoadBalancer Services and pools,
// migrate turns a MetalLB configuration into Herald's. The decisions live
// in pure functions (BuildReport here, package migrate); this package adds
// the flags, the listing and the printing.
package heraldctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/pkg/config"
	"github.com/herald-lb/herald/pkg/migrate"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// Name is the command as the user typed it, in usage and error
	// messages: "heraldctl" when empty, "kubectl herald" as a kubectl plugin
	// (see ProgramName).
	Name string
}

// name is the program name messages use.
func (s IO) name() string {
	if s.Name == "" {
		return "heraldctl"
	}
	return s.Name
}

// named rewrites a text written for "heraldctl" for the name in use.
func (s IO) named(text string) string { return strings.ReplaceAll(text, "heraldctl", s.name()) }

// ProgramName is the name to give IO.Name for a process started as argv0:
// kubectl runs the plugin binary kubectl-herald (found on $PATH) for
// `kubectl herald`, so that is how its user typed it.
func ProgramName(argv0 string) string {
	base := filepath.Base(argv0)
	if p, ok := strings.CutPrefix(strings.TrimSuffix(base, ".exe"), "kubectl-"); ok {
		return "kubectl " + strings.ReplaceAll(p, "_", "-")
	}
	return "heraldctl"
}

const usageText = `heraldctl inspects Herald and migrates to it from MetalLB.

Usage:
  heraldctl status  [flags]   LoadBalancer Services: addresses, pools, missing families, announcing nodes; pool usage
  heraldctl migrate [flags]   convert MetalLB's configuration (resources or the old ConfigMap) into Herald's

Run "heraldctl <command> -h" for a command's flags.
`

// Exec is a whole main: it runs heraldctl as the program name (in usage and
// errors) on the process's arguments and standard streams, cancelled by
// SIGINT or SIGTERM, and exits with its code.
func Exec(name string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Name: name})
	stop()
	os.Exit(code)
}

// Main runs heraldctl with args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Err, stdio.named(usageText))
		return exitUsage
	}
	var err error
	switch args[0] {
	case "status":
		err = runStatus(ctx, args[1:], stdio)
	case "migrate":
		err = runMigrate(ctx, args[1:], stdio)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdio.Out, stdio.named(usageText))
		return exitOK
	default:
		fmt.Fprintf(stdio.Err, "%s: unknown command %q\n\n%s", stdio.name(), args[0], stdio.named(usageText))
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stdio.Err, "%s %s: %v\n", stdio.name(), args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stdio.Err, "%s %s: %v\n", stdio.name(), args[0], err)
		return exitError
	}
}

// usageError is a mistake in the command line, as opposed to a failure.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// parse parses a command's flags, refusing positional arguments: every
// input is named by a flag.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// clusterFlags are the connection flags both commands share.
type clusterFlags struct {
	kubeconfig, context string
	timeout             time.Duration
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty uses $KUBECONFIG, ~/.kube/config or the in-cluster configuration")
	fs.StringVar(&c.context, "context", "", "kubeconfig context to use; empty uses the current one")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long to wait for the apiserver")
}

func runStatus(ctx context.Context, args []string, stdio IO) error {
	fs := flag.NewFlagSet(stdio.name()+" status", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	var cf clusterFlags
	cf.register(fs)
	namespace := fs.String("namespace", "herald-system", "Herald's namespace, holding the pools and the announcement records")
	lbClass := fs.String("lb-class", "", "show Services of this spec.loadBalancerClass, as the controller's --lb-class; empty shows Services without a class")
	output := fs.String("o", formatTable, "output format: table, json or yaml")
	fs.StringVar(output, "output", formatTable, "same as -o")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), stdio.named("Usage: heraldctl status [flags]\n\nShows the LoadBalancer Services Herald handles (addresses, pool, IP families, missing families and why,\nannouncing nodes) and the pools' usage per family.\n\nFlags:\n"))
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *output != formatTable && *output != formatJSON && *output != formatYAML {
		return usagef("-o %q: want table, json or yaml", *output)
	}
	c, err := newClient(cf.kubeconfig, cf.context)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	in, err := listStatus(ctx, c, *namespace, *lbClass)
	if err != nil {
		return err
	}
	return printReport(stdio.Out, BuildReport(in), *output)
}

// fileList is a repeatable -f flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(s string) error { *f = append(*f, s); return nil }

func runMigrate(ctx context.Context, args []string, stdio IO) error {
	fs := flag.NewFlagSet(stdio.name()+" migrate", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	var files fileList
	fs.Var(&files, "f", "a file of MetalLB YAML (several documents allowed; - for standard input); repeat for several files")
	fromCluster := fs.Bool("from-cluster", false, "read MetalLB's configuration from the cluster instead of files")
	var cf clusterFlags
	cf.register(fs)
	metallbNS := fs.String("metallb-namespace", "metallb-system", "with --from-cluster: MetalLB's namespace")
	configMap := fs.String("metallb-configmap", "config", "with --from-cluster: the name of MetalLB's pre-0.13 ConfigMap, read when present; empty skips it")
	namespace := fs.String("namespace", "herald-system", "Herald's namespace, where the written objects go")
	lbClass := fs.String("lb-class", "", "with --from-cluster: check the Services of this spec.loadBalancerClass, as the controller's --lb-class; empty checks Services without a class")
	outFile := fs.String("o", "", "write the Herald YAML to this file instead of standard output")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), stdio.named(`Usage: heraldctl migrate (-f FILE... | --from-cluster) [flags]

Converts MetalLB's configuration into Herald's and writes it as YAML for kubectl apply. Every setting that
cannot be carried over as it was gets a warning on standard error. The result is checked with Herald's own
configuration rules; if it fails them, the problems are listed and the exit status is 1. With --from-cluster,
the LoadBalancer Services are checked too: a warning names every Service whose address no migrated pool
holds (Herald would give it a new one) or whose pool annotation names a pool that is not migrated.

Flags:
`))
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if (len(files) > 0) == *fromCluster {
		return usagef("give either -f FILE or --from-cluster")
	}

	var (
		docs []migrate.Document
		svcs *corev1.ServiceList
	)
	if *fromCluster {
		c, err := newClient(cf.kubeconfig, cf.context)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		if docs, err = listMetalLB(ctx, c, *metallbNS, *configMap); err != nil {
			return err
		}
		svcs = &corev1.ServiceList{}
		if err := c.List(ctx, svcs); err != nil {
			return fmt.Errorf("list Services: %w", err)
		}
	} else {
		for _, f := range files {
			d, err := readFile(f, stdio.In)
			if err != nil {
				return err
			}
			docs = append(docs, d...)
		}
	}
	return migrateDocs(docs, svcs, *namespace, *lbClass, *outFile, stdio)
}

func readFile(path string, stdin io.Reader) ([]migrate.Document, error) {
	if path == "-" {
		return migrate.ReadDocuments(stdin, "standard input")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return migrate.ReadDocuments(f, path)
}

// migrateDocs converts, writes the YAML, reports what was not carried over,
// and fails when Herald would refuse the result. svcs, when listed, are
// checked against the result.
func migrateDocs(docs []migrate.Document, svcs *corev1.ServiceList, namespace, lbClass, outFile string, stdio IO) error {
	res, err := migrate.Migrate(docs, migrate.Options{Namespace: namespace})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stdio.Err, "warning:", w)
	}
	o := res.Objects
	n := len(o.Pools) + len(o.L2Advertisements) + len(o.BGPAdvertisements) + len(o.BGPPeers) + len(o.Communities) + len(o.BFDProfiles)
	if n == 0 {
		return errors.New("the input holds no MetalLB configuration that could be migrated")
	}
	out, err := migrate.Render(o)
	if err != nil {
		return err
	}
	if outFile != "" {
		if err := os.WriteFile(outFile, out, 0o644); err != nil {
			return err
		}
	} else if _, err := stdio.Out.Write(out); err != nil {
		return err
	}
	cfg, errs := config.Build(o)
	for _, e := range errs {
		fmt.Fprintln(stdio.Err, "error:", e)
	}
	warnings := len(res.Warnings)
	if cfg != nil {
		for _, w := range cfg.Warnings {
			fmt.Fprintln(stdio.Err, "warning:", w)
		}
		warnings += len(cfg.Warnings)
		if svcs != nil {
			for _, w := range serviceChecks(cfg, svcs.Items, lbClass) {
				fmt.Fprintln(stdio.Err, "warning:", w)
				warnings++
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d objects written, but Herald would refuse them: fix the %d problems above before applying", n, len(errs))
	}
	fmt.Fprintf(stdio.Err, "%s migrate: %d objects written for namespace %s, %d warnings\n", stdio.name(), n, namespace, warnings)
	return nil
}
