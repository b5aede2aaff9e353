package members

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Herald's own bytes on memberlist: the node metadata every member gossips,
// and the leave notice a member sends to its peers when it leaves
// gracefully. Both are small, versioned and decoded defensively: they come
// from the network (authenticated only when a key is configured).

const (
	metaVersion = 1
	metaLen     = 1 + 8 // version, instance

	noticeVersion = 1
	noticeLeave   = 1
	noticeHdrLen  = 2 + 8 // version, kind, instance
	// maxNameLen is the longest Kubernetes node name (a DNS subdomain).
	maxNameLen = 253
)

// encodeMeta returns the node metadata that carries the process instance. A
// restarted speaker keeps its name but gets a new instance, which lets peers
// tell it from the process that left (and makes memberlist refute the old
// process's state at once).
func encodeMeta(instance uint64) []byte {
	b := make([]byte, metaLen)
	b[0] = metaVersion
	binary.BigEndian.PutUint64(b[1:], instance)
	return b
}

// decodeMeta returns the instance in a member's metadata; ok is false for
// metadata Herald did not write.
func decodeMeta(b []byte) (instance uint64, ok bool) {
	if len(b) != metaLen || b[0] != metaVersion {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[1:]), true
}

// encodeLeaveNotice is the datagram a leaving member sends straight to every
// peer, so they drop it without waiting for the next gossip round.
func encodeLeaveNotice(name string, instance uint64) []byte {
	b := make([]byte, noticeHdrLen, noticeHdrLen+len(name))
	b[0] = noticeVersion
	b[1] = noticeLeave
	binary.BigEndian.PutUint64(b[2:], instance)
	return append(b, name...)
}

var errNotice = errors.New("malformed leave notice")

// decodeLeaveNotice parses a leave notice. The name and instance must both be
// present: a notice matches one process of one member, never a whole name.
func decodeLeaveNotice(b []byte) (name string, instance uint64, err error) {
	if len(b) < noticeHdrLen+1 {
		return "", 0, fmt.Errorf("%w: %d bytes", errNotice, len(b))
	}
	if b[0] != noticeVersion || b[1] != noticeLeave {
		return "", 0, fmt.Errorf("%w: version %d kind %d", errNotice, b[0], b[1])
	}
	instance = binary.BigEndian.Uint64(b[2:noticeHdrLen])
	nb := b[noticeHdrLen:]
	if instance == 0 || len(nb) > maxNameLen {
		return "", 0, fmt.Errorf("%w: instance %d, name of %d bytes", errNotice, instance, len(nb))
	}
	return string(nb), instance, nil
}
