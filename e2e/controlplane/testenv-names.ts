// Environment variable names shared by the Jest global setup and the test helpers; kept apart so the
// setup does not load @kubernetes/client-node and the helpers do not load the launcher.
export const KUBECONFIG_ENV = "CERT_AGENT_TEST_KUBECONFIG";
export const NO_CONTROLPLANE_ENV = "CERT_AGENT_NO_CONTROLPLANE";
/** File the global setup writes the moment a shared component exits (name, how, log tail). Test
 * workers are other processes: they read it to fail at once instead of waiting for a timeout. */
export const FAILURE_FILE_ENV = "CERT_AGENT_TEST_CONTROLPLANE_FAILURE_FILE";
