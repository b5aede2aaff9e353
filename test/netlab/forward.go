package netlab

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// Forwarder relays TCP connections made to a loopback port inside a host's
// namespace to an address in the test process's own namespace. It lets
// programs running in lab namespaces reach a control plane that listens on
// the machine's loopback without connecting the host namespace to the lab.
type Forwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// ForwardLoopback listens on listen (e.g. "127.0.0.1:6443") inside the host's
// namespace and relays every connection to target, dialled from the test
// process's namespace.
func (h *Host) ForwardLoopback(listen, target string) (*Forwarder, error) {
	f := &Forwarder{target: target, conns: map[net.Conn]struct{}{}}
	// The listening socket is created inside the namespace; accepting and
	// dialling happen on ordinary threads, which stay in the test's namespace.
	if err := h.Do(func() (err error) {
		f.ln, err = net.Listen("tcp", listen)
		return err
	}); err != nil {
		return nil, fmt.Errorf("forward %s in %s: %w", listen, h.NS, err)
	}
	f.wg.Add(1)
	go f.serve()
	h.lab.mu.Lock()
	h.lab.closers = append(h.lab.closers, f)
	h.lab.mu.Unlock()
	return f, nil
}

func (f *Forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) relay(in net.Conn) {
	defer f.wg.Done()
	out, err := net.Dial("tcp", f.target)
	if err != nil {
		in.Close()
		return
	}
	if !f.track(in) || !f.track(out) {
		in.Close()
		out.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
	in.Close()
	out.Close()
	f.mu.Lock()
	delete(f.conns, in)
	delete(f.conns, out)
	f.mu.Unlock()
}

// Close stops listening and cuts every relayed connection.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	err := f.ln.Close()
	f.wg.Wait()
	return err
}

// Pause cuts the relayed connections and refuses new ones until Resume: to the
// programs behind it the control plane is unreachable.
func (f *Forwarder) Pause() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
}

// Resume accepts connections again after Pause.
func (f *Forwarder) Resume() {
	f.mu.Lock()
	f.closed = false
	f.mu.Unlock()
}
