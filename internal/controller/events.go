package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-lb/herald/pkg/config"
)

// MaxEventNote is the apiserver's limit on an Event's note, in bytes: a
// longer note is refused and the Event lost.
const MaxEventNote = 1024

// eventf emits an Event on obj. Every Event of the controller goes through
// it so that no note exceeds MaxEventNote: a longer one is cut on a UTF-8
// boundary and marked "…".
func (c *Controller) eventf(obj runtime.Object, eventType, reason, action, format string, args ...any) {
	c.recorder.Eventf(obj, nil, eventType, reason, action, "%s", EventNote(fmt.Sprintf(format, args...)))
}

// EventNote bounds an Event note to MaxEventNote bytes, valid UTF-8.
func EventNote(s string) string { return config.Bound(s, MaxEventNote) }
