// Package controlplane starts a real kube-apiserver and etcd for Herald's
// integration tests. The binaries are built from Go modules by
// hack/k8s-bins/build-binaries.sh and cached outside the work tree, so every
// checkout on a machine shares one build.
package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-lb/herald/internal/kube"
)

// DualStackServiceCIDRs makes the apiserver hand PreferDualStack and
// RequireDualStack Services both families, as on a dual-stack cluster.
const DualStackServiceCIDRs = "10.96.0.0/16,fd00:10:96::/112"

// SingleStackServiceCIDRs is an IPv4-only cluster: PreferDualStack Services get
// [IPv4] and RequireDualStack ones are rejected by the apiserver.
const SingleStackServiceCIDRs = "10.96.0.0/16"

// Options selects the kind of cluster to start.
type Options struct {
	// SingleStack starts an IPv4-only cluster instead of a dual-stack one.
	SingleStack bool
	// SkipCRDs leaves Herald's CRDs uninstalled.
	SkipCRDs bool
}

// Env is a running control plane.
type Env struct {
	Config *rest.Config
	// Client knows client-go's types and Herald's API.
	Client client.Client
	Scheme *runtime.Scheme
	// Kubeconfig is the path of an admin (system:masters) kubeconfig file.
	Kubeconfig string
	// Assets is the directory holding kube-apiserver, etcd and kubectl.
	Assets string

	env *envtest.Environment
	dir string
}

// NewScheme knows client-go's types, CRDs and Herald's API.
func NewScheme() *runtime.Scheme { return kube.NewScheme() }

// Start starts etcd and kube-apiserver and installs Herald's CRDs.
func Start(opts Options) (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	scheme := NewScheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		Scheme:                scheme,
		// Without this envtest would try to download binaries on a miss.
		DownloadBinaryAssets: false,
	}
	if !opts.SkipCRDs {
		env.CRDDirectoryPaths = []string{filepath.Join(root, "deploy", "crds")}
		env.ErrorIfCRDPathMissing = true
	}
	cidrs := DualStackServiceCIDRs
	if opts.SingleStack {
		cidrs = SingleStackServiceCIDRs
	}
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", cidrs)

	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start control plane (assets %s): %w", assets, err)
	}
	e := &Env{Config: cfg, Scheme: scheme, Assets: assets, env: env}
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := e.writeKubeconfig(); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) writeKubeconfig() error {
	user, err := e.env.AddUser(envtest.User{Name: "herald-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	if e.dir, err = os.MkdirTemp("", "herald-controlplane-"); err != nil {
		return err
	}
	e.Kubeconfig = filepath.Join(e.dir, "kubeconfig")
	return os.WriteFile(e.Kubeconfig, kc, 0o600)
}

// Kubectl runs the kubectl built beside the apiserver against this cluster.
func (e *Env) Kubectl(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(e.Assets, "kubectl"), append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.Kubeconfig)
	return cmd
}

// Stop stops the control plane and removes its files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
	return err
}

var (
	assetsOnce sync.Once
	assetsDir  string
	assetsErr  error
)

// Assets returns the directory with the control-plane binaries: $KUBEBUILDER_ASSETS
// when set, else the cached build, which is made on first use (minutes when cold).
func Assets() (string, error) {
	assetsOnce.Do(func() {
		if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
			assetsDir = d
			return
		}
		root, err := RepoRoot()
		if err != nil {
			assetsErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "hack", "k8s-bins", "build-binaries.sh"))
		cmd.Env = append(os.Environ(), "BIN_ROOT="+BinRoot())
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			assetsErr = fmt.Errorf("build control-plane binaries: %w", err)
			return
		}
		assetsDir = strings.TrimSpace(string(out))
	})
	return assetsDir, assetsErr
}

// BinRoot is where built control-plane binaries are cached, shared by every
// checkout on the machine.
func BinRoot() string {
	if d := os.Getenv("HERALD_TEST_BINS"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "herald-test-bins")
}

// RepoRoot finds the module root by walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/herald-lb/herald\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of github.com/herald-lb/herald) not found above the working directory")
		}
		dir = parent
	}
}
