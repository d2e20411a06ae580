// The real kube-controller-manager, only for its garbage collector (ownerReferences) and namespace
// controller in local tests: without it, deleting an owner would leave its dependents behind.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
