// Environment variable names shared by the Jest global setup and the test helpers; kept apart so the
// setup does not load @kubernetes/client-node and the helpers do not load the launcher.
export const KUBECONFIG_ENV = "CERT_AGENT_TEST_KUBECONFIG";
export const NO_CONTROLPLANE_ENV = "CERT_AGENT_NO_CONTROLPLANE";
