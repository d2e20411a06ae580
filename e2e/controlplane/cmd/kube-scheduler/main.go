// The real kube-scheduler, built from the same k8s.io/kubernetes module as the other binaries: with
// KWOK's fake Nodes (nodes.ts) it binds Pods, so Deployments, ReplicaSets and PodDisruptionBudgets
// behave as in a cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
