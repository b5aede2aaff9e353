package announce

// Alive decides whether a node is alive for the election: the membership's
// view when one runs (members non-nil), else the Node's readiness; the node
// deciding is always alive (it is running).
func Alive(n Node, members map[string]bool, self string) bool {
	switch {
	case n.Name == self:
		return true
	case members != nil:
		return members[n.Name]
	default:
		return n.Ready
	}
}

// Speakers updates the set of nodes known to run a speaker, which the
// partition rule counts. A node joins the set when its speaker is seen alive
// in the membership, and stays while its Node exists and is Ready, also
// when its speaker is unreachable: a speaker cut off from the others cannot
// tell their death from its own isolation, so it must keep counting them,
// or it would believe itself a majority of one. A Node that is not Ready or
// deleted is forgotten. Nodes never seen running a speaker (Windows nodes,
// tainted nodes, nodes outside the DaemonSet) never count. nodes maps every
// Node to its readiness.
func Speakers(prev, alive, nodes map[string]bool, self string) map[string]bool {
	out := map[string]bool{self: true}
	for n, ready := range nodes {
		if alive[n] || (prev[n] && ready) {
			out[n] = true
		}
	}
	return out
}
