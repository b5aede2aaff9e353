// Package image checks the OCI archive `make image` writes: it builds the
// archive the same way, reads it with the standard library only (an
// independent check of hack/image's go-containerregistry output), and runs
// the speaker binary from the unpacked root filesystem inside a lab node's
// network namespace.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/herald-lb/herald/test/controlplane"
	"github.com/herald-lb/herald/test/netlab"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
}

type config struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		User       string            `json:"User"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

// buildArchive runs what `make image` runs, into dir.
func buildArchive(t *testing.T, dir string) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins := filepath.Join(dir, "bins")
	out := filepath.Join(dir, "herald.oci.tar")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bins+"/", "./cmd/controller", "./cmd/speaker")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	img := exec.Command("go", "run", ".", "-out", out, "-arch", runtime.GOARCH, "-version", "test", "-ref", "ghcr.io/herald-lb/herald:test",
		filepath.Join(bins, "controller"), filepath.Join(bins, "speaker"))
	img.Dir = filepath.Join(root, "hack", "image")
	if b, err := img.CombinedOutput(); err != nil {
		t.Fatalf("hack/image: %v\n%s", err, b)
	}
	return out
}

// readArchive returns the archive's files by name.
func readArchive(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}

func blob(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	alg, hexd, ok := strings.Cut(d.Digest, ":")
	if !ok || alg != "sha256" {
		t.Fatalf("digest %q", d.Digest)
	}
	b, ok := files["blobs/sha256/"+hexd]
	if !ok {
		t.Fatalf("blob %s missing from the archive", d.Digest)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != hexd || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: content does not match its digest or size", d.Digest)
	}
	return b
}

func TestImageArchiveHasTheManifestsEntrypointUserAndRunsTheSpeaker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds static binaries")
	}
	dir := t.TempDir()
	files := readArchive(t, buildArchive(t, dir))

	var lay struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(files["oci-layout"], &lay); err != nil || lay.Version != "1.0.0" {
		t.Fatalf("oci-layout: %v %s", err, files["oci-layout"])
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	md := index.Manifests[0]
	if md.MediaType != "application/vnd.oci.image.manifest.v1+json" || md.Annotations["org.opencontainers.image.ref.name"] != "ghcr.io/herald-lb/herald:test" {
		t.Errorf("index entry: %+v", md)
	}
	var m manifest
	if err := json.Unmarshal(blob(t, files, md), &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != "application/vnd.oci.image.config.v1+json" || len(m.Layers) != 1 {
		t.Fatalf("manifest: %+v", m)
	}
	var c config
	if err := json.Unmarshal(blob(t, files, m.Config), &c); err != nil {
		t.Fatal(err)
	}
	// The same entrypoint and user as the Dockerfile; the manifests choose
	// /controller or /speaker with command:.
	if c.OS != "linux" || c.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", c.OS, c.Architecture, runtime.GOARCH)
	}
	if strings.Join(c.Config.Entrypoint, " ") != "/controller" || c.Config.User != "65532:65532" {
		t.Errorf("entrypoint %q user %q, want [/controller] 65532:65532", c.Config.Entrypoint, c.Config.User)
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version"} {
		if c.Config.Labels[l] == "" {
			t.Errorf("label %s missing: %v", l, c.Config.Labels)
		}
	}
	if c.Config.Labels["org.opencontainers.image.version"] != "test" {
		t.Errorf("version label %q", c.Config.Labels["org.opencontainers.image.version"])
	}
	for _, f := range []string{"Dockerfile", "deploy/base/controller.yaml", "deploy/base/speaker.yaml"} {
		root, _ := controlplane.RepoRoot()
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"Dockerfile":                  {`ENTRYPOINT ["/controller"]`, "USER 65532:65532", "/controller /out/speaker /"},
			"deploy/base/controller.yaml": {"command: [/controller]", "runAsUser: 65532"},
			"deploy/base/speaker.yaml":    {"command: [/speaker]"},
		}[f]
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s does not say %q: image and %s disagree", f, w, f)
			}
		}
	}

	// Unpack the layer and run the speaker from it.
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, m.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "/") || h.Mode&0o111 == 0 {
			t.Fatalf("layer entry %s (type %c, mode %o): want executables at /", h.Name, h.Typeflag, h.Mode)
		}
		b, err := io.ReadAll(io.LimitReader(tr, 512<<20))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, h.Name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(names, " ") != "controller speaker" {
		t.Fatalf("layer holds %v, want controller and speaker", names)
	}
	if why := netlab.Available(); why != "" {
		t.Skip(why)
	}
	lab, err := netlab.New(netlab.Standard()[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	// The empty base has no libc: a binary that is not static fails here.
	out, err := lab.Host("node1").Output(filepath.Join(rootfs, "speaker"), "--help")
	if err != nil || !strings.Contains(out, "node-name") {
		t.Fatalf("speaker from the image in %s: %v\n%s", lab.Host("node1").NS, err, out)
	}
	if b, err := exec.Command("file", filepath.Join(rootfs, "speaker")).Output(); err == nil && !bytes.Contains(b, []byte("statically linked")) {
		t.Errorf("speaker is not static: %s", b)
	}
}
