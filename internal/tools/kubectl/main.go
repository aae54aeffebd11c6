// Command kubectl is the newest kubectl, built from k8s.io/kubectl at the
// version matching tugboat's k8s.io modules. The API server's kubectl session
// tests build it (see orchestrator/apiserver) and run every scripted session
// with it as well as with the kubectl installed on the machine.
//
// It is its own module so that kubectl's dependencies never enter tugboat's
// go.mod. Build it with:
//
//	cd internal/tools/kubectl && go build -o kubectl .
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		// Pretty-print the error and exit with an error.
		util.CheckErr(err)
	}
}
