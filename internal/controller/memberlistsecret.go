package controller

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// MemberlistSecretKey is the key of the memberlist Secret that holds the
// speakers' gossip key (the speaker's --memberlist-secret reads it).
const MemberlistSecretKey = "secretkey"

// memberlistKeyBytes is the key the controller makes: AES-256.
const memberlistKeyBytes = 32

// What the controller logs once at start about the memberlist Secret.
const (
	LogMemberlistSecretCreated = "created the memberlist secret with a random key"
	LogMemberlistSecretKept    = "memberlist secret exists; left as it is"
)

// EnsureMemberlistSecret creates the memberlist Secret with a random 32-byte
// key when it does not exist, and reports whether it did. An existing Secret
// is never read or changed: speakers read the key only when they start, so a
// replaced key would split running speakers from restarted ones. Only create
// is needed, which is all the controller's RBAC grants on Secrets for this.
func EnsureMemberlistSecret(ctx context.Context, c client.Client, namespace, name string) (bool, error) {
	key := make([]byte, memberlistKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return false, err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{
			"app.kubernetes.io/name": "herald", "app.kubernetes.io/component": "speaker", "app.kubernetes.io/managed-by": "herald-controller"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{MemberlistSecretKey: key},
	}
	switch err := c.Create(ctx, sec); {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	default:
		return false, fmt.Errorf("create memberlist secret %s/%s: %w", namespace, name, err)
	}
}

// AddMemberlistSecret makes every replica, leader or not, ensure the
// memberlist Secret once at start, retrying until it succeeds: speakers
// refuse to start without it, so it must not wait for an election. Replicas
// racing each other are safe, as only one create can win. An empty name adds
// nothing.
func AddMemberlistSecret(mgr manager.Manager, namespace, name string) error {
	if name == "" {
		return nil
	}
	return mgr.Add(memberlistSecret{mgr: mgr, namespace: namespace, name: name})
}

type memberlistSecret struct {
	mgr             manager.Manager
	namespace, name string
}

func (memberlistSecret) NeedLeaderElection() bool { return false }

func (m memberlistSecret) Start(ctx context.Context) error {
	log := m.mgr.GetLogger().WithValues("secret", m.namespace+"/"+m.name)
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		created, err := EnsureMemberlistSecret(ctx, m.mgr.GetClient(), m.namespace, m.name)
		switch {
		case err == nil && created:
			log.Info(LogMemberlistSecretCreated)
			return nil
		case err == nil:
			log.Info(LogMemberlistSecretKept)
			return nil
		}
		log.Error(err, "ensuring the memberlist secret; speakers cannot start without it", "retryIn", wait.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
