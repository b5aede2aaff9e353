package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/test/controlplane"
)

// speakerBinDir holds the speaker binary the tests build; TestMain removes it.
var speakerBinDir string

// buildSpeaker builds cmd/speaker once per test binary.
var buildSpeaker = sync.OnceValues(func() (string, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return "", err
	}
	if speakerBinDir, err = os.MkdirTemp("", "herald-speaker-bin-"); err != nil {
		return "", err
	}
	bin := filepath.Join(speakerBinDir, "speaker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/speaker")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/speaker: %v\n%s", err, out)
	}
	return bin, nil
})

// speakerOutput is the speaker's stderr, written to a file while it runs.
type speakerOutput string

func (o speakerOutput) String() string {
	b, _ := os.ReadFile(string(o))
	return string(b)
}

// startMemberlistSpeaker runs the real speaker binary against the
// apiserver with only memberlist enabled (no layer 2, no BGP: no root
// needed) on a loopback address, for a namespace and node of its own; key,
// when set, is the memberlist Secret's key, created before the speaker
// starts.
func startMemberlistSpeaker(t *testing.T, ns string, key []byte, extra ...string) (*exec.Cmd, speakerOutput, chan error) {
	t.Helper()
	bin, err := buildSpeaker()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-node"}},
	}
	if key != nil {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "herald-memberlist", Namespace: ns},
			Data: map[string][]byte{"secretkey": key}})
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	addr := fmt.Sprintf("127.%d.%d.%d", rand.IntN(254)+1, rand.IntN(254)+1, rand.IntN(254)+1)
	args := append([]string{"--kubeconfig", env.Kubeconfig, "--node-name", ns + "-node", "--namespace", ns,
		"--layer2=false", "--bgp=false", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--memberlist-bind-address", addr, "--memberlist-port", fmt.Sprint(20000 + rand.IntN(12000))}, extra...)
	cmd := exec.Command(bin, args...)
	out := speakerOutput(filepath.Join(t.TempDir(), "speaker.log"))
	f, err := os.Create(string(out))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		done <- <-done // keep the result for whoever reads it later
	})
	return cmd, out, done
}

// exited waits for the speaker to exit and returns its error (nil: exit 0).
func exited(t *testing.T, out speakerOutput, done chan error, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("speaker still running after %s:\n%s", timeout, out)
		return nil
	}
}

// waitStarted waits until the speaker logs that it runs.
func waitStarted(t *testing.T, out speakerOutput, done chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), `"msg":"starting speaker"`) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("speaker exited (%v):\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("speaker did not start within 60 s:\n%s", out)
		}
	}
}

// Without the memberlist Secret the speaker refuses to start, and the error
// says how to create the Secret (or how to opt out).
func TestSpeakerWithoutMemberlistSecretRefusesToStart(t *testing.T) {
	_, out, done := startMemberlistSpeaker(t, "sec-nokey", nil)
	if err := exited(t, out, done, 60*time.Second); err == nil {
		t.Fatalf("speaker exited 0 without the memberlist Secret:\n%s", out)
	}
	for _, want := range []string{
		"memberlist secret sec-nokey/herald-memberlist not found",
		"kubectl -n sec-nokey create secret generic herald-memberlist --from-literal=secretkey=$(openssl rand -base64 24)",
		"--memberlist-insecure",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("speaker error does not contain %q:\n%s", want, out)
		}
	}
}

// With --memberlist-insecure and no Secret the speaker runs, gossips in
// plaintext and says so.
func TestSpeakerWithMemberlistInsecureStartsAndWarns(t *testing.T) {
	cmd, out, done := startMemberlistSpeaker(t, "sec-insecure", nil, "--memberlist-insecure")
	waitStarted(t, out, done)
	for _, want := range []string{
		`"msg":"memberlist secret not found; gossip is unencrypted and unauthenticated (--memberlist-insecure)"`,
		`"encrypted":false`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("speaker log does not contain %s:\n%s", want, out)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := exited(t, out, done, 30*time.Second); err != nil {
		t.Errorf("speaker exited with %v after SIGTERM:\n%s", err, out)
	}
}

// With the Secret (the documented command's 32-character key) the speaker
// gossips encrypted and warns about nothing.
func TestSpeakerWithMemberlistSecretGossipsEncrypted(t *testing.T) {
	cmd, out, done := startMemberlistSpeaker(t, "sec-key", []byte("0123456789abcdefghijklmnopqrstuv"))
	waitStarted(t, out, done)
	if !strings.Contains(out.String(), `"encrypted":true`) {
		t.Errorf("memberlist does not log that it is encrypted:\n%s", out)
	}
	if strings.Contains(out.String(), "gossip is unencrypted") {
		t.Errorf("speaker warns about unencrypted gossip although the Secret exists:\n%s", out)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := exited(t, out, done, 30*time.Second); err != nil {
		t.Errorf("speaker exited with %v after SIGTERM:\n%s", err, out)
	}
}
