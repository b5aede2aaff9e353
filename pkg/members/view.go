package members

// view is the alive set as memberlist's events and the leave notices describe
// it. It is the only place that decides who is alive; Members feeds it and
// publishes its result.
//
// Memberlist reports a member as joined when it becomes alive (from unknown,
// dead or left) and as left when it is declared dead or leaves; a suspect
// member stays in the view until convicted, so a single missed probe never
// moves an address. A leave notice removes a member before memberlist's own
// gossip does, but only the process instance that sent it: a restarted
// speaker (same name, new instance) is never removed by its predecessor's
// notice, and a late "alive" about the departed process cannot bring it
// back.
type view struct {
	alive    map[string]uint64 // member name -> process instance
	departed map[string]uint64 // member name -> instance that sent a leave notice
	gone     map[string]uint64 // member name -> instance memberlist declared dead or left
}

func newView() view {
	return view{alive: map[string]uint64{}, departed: map[string]uint64{}, gone: map[string]uint64{}}
}

// join records that memberlist considers name alive as instance (0 when its
// metadata is not Herald's). It also handles metadata updates. It reports
// whether the set of alive names changed.
func (v *view) join(name string, instance uint64) bool {
	if d, ok := v.departed[name]; ok {
		if instance != 0 && d == instance {
			return false
		}
		delete(v.departed, name)
	}
	delete(v.gone, name)
	_, had := v.alive[name]
	v.alive[name] = instance
	return !had
}

// leave records that memberlist declared name dead or left.
func (v *view) leave(name string) bool {
	inst, had := v.alive[name]
	delete(v.alive, name)
	if had {
		bounded(v.gone)
		v.gone[name] = inst
	}
	return had
}

// notice records a leave notice from instance of name. Only a notice about
// a member the view knows as that instance (alive, or just declared gone by
// memberlist) counts: notices naming unknown members or other instances are
// ignored and leave nothing behind, so forged names cannot grow departed.
func (v *view) notice(name string, instance uint64) bool {
	if instance == 0 {
		return false
	}
	cur, had := v.alive[name]
	if !had {
		if v.gone[name] == instance {
			// Memberlist already saw it go; keep its late "alive" out.
			bounded(v.departed)
			v.departed[name] = instance
		}
		return false
	}
	if cur != instance {
		// An earlier process of a restarted member.
		return false
	}
	bounded(v.departed)
	v.departed[name] = instance
	delete(v.alive, name)
	return true
}

// bounded makes room for one more entry, dropping an arbitrary one at
// maxDeparted.
func bounded(m map[string]uint64) {
	if len(m) < maxDeparted {
		return
	}
	for n := range m {
		delete(m, n)
		return
	}
}

// maxDeparted bounds departed and gone (each holds only names memberlist
// admitted; the bound caps even a cluster churning through many names).
const maxDeparted = 4096

func (v *view) names() map[string]bool {
	out := make(map[string]bool, len(v.alive))
	for n := range v.alive {
		out[n] = true
	}
	return out
}
