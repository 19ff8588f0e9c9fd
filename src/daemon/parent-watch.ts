/**
 * Started by npm (`npx holdfast serve`, `npm start`): npm passes a SIGTERM or SIGINT to the `sh -c`
 * it spawned, not to holdfast, so stopping npx killed the shell and left holdfast running, re-parented
 * to init, with nobody to stop it (seen with npm 11.19 and dash). Under npm (npm_command is set) the
 * primary checks once a second whether its parent is still the one it started with, and stops as on
 * SIGTERM when it is not. Anywhere else (systemd, a shell, nohup) nothing is watched.
 */
export function whenNpmParentGone(onGone: () => void, env: NodeJS.ProcessEnv = process.env): () => void {
  if (!env.npm_command) return () => {};
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
