// Command heraldctl inspects Herald (status) and migrates a MetalLB
// configuration to it (migrate). The logic lives in internal/heraldctl.
// Copied or linked as kubectl-herald on $PATH it is the kubectl plugin
// `kubectl herald` (cmd/kubectl-herald builds that binary directly).
package main

import (
	"os"

	"github.com/herald-lb/herald/internal/heraldctl"
)

func main() { heraldctl.Exec(heraldctl.ProgramName(os.Args[0])) }
