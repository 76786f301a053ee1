// KV entries as Consul's JSON writes them (structs.DirEntry): Value base64 or null, Session left out
// when no one holds the lock.
import type { KvEntry } from './kv-store.ts';

export function kvJson(e: KvEntry, withValue = true): Record<string, unknown> {
  return {
    LockIndex: e.lockIndex,
    Key: e.key,
    Flags: e.flags,
    Value: withValue && e.value.length > 0 ? e.value.toString('base64') : null,
    ...(e.session ? { Session: e.session } : {}),
    CreateIndex: e.createIndex,
    ModifyIndex: e.modifyIndex,
  };
}

const SUSPICIOUS = [
  '.js',
  '.css',
  '.html',
  '.htm',
  '.xml',
  '.json',
  '.txt',
  '.log',
  '.php',
  '.asp',
  '.jsp',
  '.cgi',
  '.pl',
  '.py',
  '.rb',
  '.sh',
  '.exe',
  '.dll',
  '.bat',
  '.cmd',
  '.com',
  '.scr',
  '.vbs',
  '.pdf',
  '.doc',
  '.docx',
  '.xls',
  '.xlsx',
  '.ppt',
  '.pptx',
  '.zip',
  '.rar',
  '.tar',
  '.gz',
  '.7z',
  '.bz2',
  '.jpg',
  '.jpeg',
  '.png',
  '.gif',
  '.svg',
  '.ico',
  '.bmp',
  '.mp3',
  '.mp4',
  '.avi',
  '.mov',
  '.wmv',
  '.flv',
  '.swf',
  '.woff',
  '.woff2',
  '.ttf',
  '.eot',
  '.otf',
];

/**
 * The key checks current Consul applies on `/v1/kv/<key>` (not on `/v1/txn`): letters, digits and
 * `,-_./` only, no leading `/`, no `../`, and no file extension a cache in front might serve. Returns
 * the reason, or undefined when the key is fine.
 */
export function invalidKvKey(key: string): string | undefined {
  if (key.startsWith('/')) return "key must not begin with a '/'";
  for (let i = 0; i < key.length; i++) {
    if (!/[A-Za-z0-9,\-_./]/.test(key[i]!))
      return `key contains invalid character '${key[i]}' at position ${i}. Only alphanumeric characters and ,-_./ are allowed`;
  }
  if (key.includes('../')) return 'key contains path traversal sequence';
  const lower = key.toLowerCase();
  const ext = SUSPICIOUS.find((e) => lower.endsWith(e));
  if (ext) return `key contains suspicious file extension '${ext}' that may be cached by proxies`;
  return undefined;
}
