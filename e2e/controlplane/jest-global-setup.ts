// Placeholder until the control-plane launcher lands: starts nothing.
export default async function globalSetup(): Promise<void> {}
