// Command heraldctl inspects Herald (status) and migrates a MetalLB
// configuration to it (migrate). The logic lives in internal/heraldctl.
// Copied or linked as kubectl-herald on $PATH it is the kubectl plugin
// `kubectl herald` (cmd/kubectl-herald builds that binary directly).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-lb/herald/internal/heraldctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := heraldctl.Main(ctx, os.Args[1:], heraldctl.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Name: heraldctl.ProgramName(os.Args[0])})
	stop()
	os.Exit(code)
}
