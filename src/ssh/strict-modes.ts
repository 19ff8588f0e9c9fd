import fs from 'node:fs';
import path from 'node:path';

/**
 * sshd's StrictModes for an authorized_keys file (auth.c safe_path): the file and every folder above
 * it must be owned by root or by the user holdfast runs as, and writable by no one else; otherwise
 * someone else could put a key there. One deviation: a root-owned folder with the sticky bit (/tmp)
 * is accepted, since others cannot rename or remove what is in it. A symlink is followed first, as
 * sshd does (realpath): the folders checked are the target's, which are what an attacker would
 * need to write to.
 */
export function strictModes(file: string, st: fs.Stats, uid = process.getuid?.() ?? 0): string | null {
  const owned = (s: fs.Stats) => s.uid === 0 || s.uid === uid;
  if (!owned(st)) return `${file} is owned by uid ${st.uid}, not by root or the user holdfast runs as (chown it)`;
  if ((st.mode & 0o022) !== 0) return `${file} is writable by group or others (chmod go-w ${file})`;
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (err) {
    return `cannot check ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
  const shown = real === file ? file : `${file} (-> ${real})`;
  let dir = path.dirname(real);
  for (let i = 0; i < 64; i++) {
    let d: fs.Stats;
    try {
      d = fs.statSync(dir);
    } catch (err) {
      return `cannot check ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
    if (!owned(d)) return `folder ${dir} above ${shown} is owned by uid ${d.uid}, not by root or the user holdfast runs as`;
    const sticky = (d.mode & 0o1000) !== 0 && d.uid === 0;
    if ((d.mode & 0o022) !== 0 && !sticky) return `folder ${dir} above ${shown} is writable by group or others (chmod go-w ${dir})`;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}
