// Command kubectl-herald is heraldctl as a kubectl plugin: with this binary
// on $PATH, `kubectl herald status` and `kubectl herald migrate` run it
// (kubectl finds plugins by the kubectl- prefix). The logic lives in
// internal/heraldctl.
package main

import (
	"github.com/herald-lb/herald/internal/heraldctl"
)

func main() { heraldctl.Exec("kubectl herald") }
