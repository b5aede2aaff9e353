// Command kubectl-herald is heraldctl as a kubectl plugin: with this binary
// on $PATH, `kubectl herald status` and `kubectl herald migrate` run it
// (kubectl finds plugins by the kubectl- prefix). The logic lives in
// internal/heraldctl.
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
	code := heraldctl.Main(ctx, os.Args[1:], heraldctl.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Name: "kubectl herald"})
	stop()
	os.Exit(code)
}
