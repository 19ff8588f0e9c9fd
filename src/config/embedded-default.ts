/**
 * The config holdfast serves when none is given (`holdfast serve` on a fresh machine). It goes through
 * the same loader as a file, so `holdfast check` with no --config validates exactly this.
 * Listen on :2222, host key in the state directory, users authorized by the running user's
 * ~/.ssh/authorized_keys, one route to any destination on port 22.
 */
export const EMBEDDED_DEFAULT_NAME = '<embedded default>';

export const EMBEDDED_DEFAULT_YAML = `# holdfast embedded default
listen:
  - address: 0.0.0.0
    port: 2222
authorizedKeys: ~/.ssh/authorized_keys
routes:
  - name: default
    to: ["*:22"]
`;
