package controller_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/controller"
)

// memberlistKey reads the key of a memberlist Secret; nil when it is absent.
func (s *scope) memberlistKey(name string) (*corev1.Secret, []byte) {
	s.t.Helper()
	var sec corev1.Secret
	if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: name}, &sec); err != nil {
		return nil, nil
	}
	return &sec, sec.Data[controller.MemberlistSecretKey]
}

// A missing memberlist Secret is created with a random 32-byte key (AES-256,
// which the speaker accepts); two replicas ensuring it at once leave exactly
// one key.
func TestMissingMemberlistSecretIsCreatedWithA32ByteKey(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	var wg sync.WaitGroup
	created := make([]bool, 2)
	for i := range created {
		wg.Go(func() {
			ok, err := controller.EnsureMemberlistSecret(context.Background(), s.c, s.namespace, "herald-memberlist")
			if err != nil {
				t.Errorf("ensure: %v", err)
			}
			created[i] = ok
		})
	}
	wg.Wait()
	if created[0] == created[1] {
		t.Fatalf("created by replica: %v, want exactly one", created)
	}
	sec, key := s.memberlistKey("herald-memberlist")
	if len(key) != 32 || bytes.Equal(key, make([]byte, 32)) {
		t.Fatalf("key %x: want 32 random bytes", key)
	}
	if sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("type = %s, want Opaque", sec.Type)
	}
}

// The binary creates the Secret named by --memberlist-secret at start, before
// and without any leader election (speakers cannot start without it).
func TestControllerBinaryCreatesTheMissingMemberlistSecret(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	p := s.startControllerProcess("--memberlist-secret", "gossip")
	s.eventually(func() error {
		if _, key := s.memberlistKey("gossip"); len(key) != 32 {
			return fmt.Errorf("key is %d bytes", len(key))
		}
		// The Secret is visible before the line is written: wait for both.
		if !strings.Contains(p.log.String(), controller.LogMemberlistSecretCreated) {
			return fmt.Errorf("the controller did not log %q", controller.LogMemberlistSecretCreated)
		}
		return nil
	}, "memberlist secret created and logged")
}

// An existing memberlist Secret is never replaced or changed, whatever it
// holds: speakers read the key once, so a new one would split them.
func TestExistingMemberlistSecretIsNeverOverwritten(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	ctx := context.Background()
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: "gossip"},
		Data: map[string][]byte{controller.MemberlistSecretKey: []byte("0123456789abcdef")}}
	if err := s.c.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	created, err := controller.EnsureMemberlistSecret(ctx, s.c, s.namespace, "gossip")
	if err != nil || created {
		t.Fatalf("ensure over an existing secret: created %v, error %v", created, err)
	}
	p := s.startControllerProcess("--memberlist-secret", "gossip")
	s.eventually(func() error {
		if !strings.Contains(p.log.String(), controller.LogMemberlistSecretKept) {
			return fmt.Errorf("not logged %q yet", controller.LogMemberlistSecretKept)
		}
		return nil
	}, "controller checked the memberlist secret")
	got, key := s.memberlistKey("gossip")
	if !bytes.Equal(key, []byte("0123456789abcdef")) || got.ResourceVersion != mine.ResourceVersion {
		t.Fatalf("existing secret changed: %q (resourceVersion %s -> %s)", key, mine.ResourceVersion, got.ResourceVersion)
	}
}
