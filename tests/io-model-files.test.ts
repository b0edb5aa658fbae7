// Offline model lookup order and the verified download, against a local HTTP server.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultCacheDir, downloadTinyllama, ensureModelFiles, findModelFile, missingModelsMessage, ModelNotFoundError, TINYLLAMAS } from '../src/io/model-files.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-mf-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
function put(file: string, content = 'x'): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

describe('findModelFile', () => {
  // layout: <root>/work (cwd), <root>/shared/models, <root>/env-models, <root>/cache/models
  const root = path.join(tmp, 'find');
  const cwd = path.join(root, 'work');
  fs.mkdirSync(cwd, { recursive: true });
  const env = { NLA_MODELS: path.join(root, 'env-models'), NLA_CACHE: path.join(root, 'cache') };

  test('cache dir: NLA_CACHE, then XDG_CACHE_HOME/nla, then ~/.cache/nla', () => {
    assert.equal(defaultCacheDir({ NLA_CACHE: '/a', XDG_CACHE_HOME: '/b' }), '/a');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/b' }), path.join('/b', 'nla'));
    assert.equal(defaultCacheDir({}), path.join(os.homedir(), '.cache', 'nla'));
  });

  test('lookup order: explicit path, NLA_MODELS, cache/models, ../shared/models', () => {
    const shared = put(path.join(root, 'shared', 'models', 'm.bin'));
    assert.equal(findModelFile('m.bin', { env, cwd }), shared);
    const cached = put(path.join(root, 'cache', 'models', 'm.bin'));
    assert.equal(findModelFile('m.bin', { env, cwd }), cached);
    const viaXdg = put(path.join(root, 'xdg', 'nla', 'models', 'm.bin'));
    assert.equal(findModelFile('m.bin', { env: { XDG_CACHE_HOME: path.join(root, 'xdg') }, cwd }), viaXdg);
    const fromEnv = put(path.join(root, 'env-models', 'm.bin'));
    assert.equal(findModelFile('m.bin', { env, cwd }), fromEnv);
    const explicit = put(path.join(cwd, 'mine', 'm.bin'));
    assert.equal(findModelFile('mine/m.bin', { env, cwd }), explicit);
    assert.equal(findModelFile(explicit, { env: {}, cwd: '/' }), explicit);
  });

  test('nothing found: the error lists where it looked and how to fix it', () => {
    assert.throws(
      () => findModelFile('stories260K.bin', { env, cwd }),
      (e: Error) => {
        assert.ok(e instanceof ModelNotFoundError);
        for (const s of ['stories260K.bin', env.NLA_MODELS, path.join(env.NLA_CACHE, 'models'), 'NLA_MODELS=', 'scripts/setup.sh', 'downloadTinyllama']) {
          assert.ok(e.message.includes(s), `message should mention ${s}: ${e.message}`);
        }
        return true;
      },
    );
  });
});

describe('downloadTinyllama (local server)', () => {
  const files = new Map<string, Buffer>([
    ['/stories260K/tiny.bin', Buffer.from('tiny model bytes')],
    ['/stories260K/tok512.bin', Buffer.from('not the real tokenizer')],
  ]);
  const requested: string[] = [];
  let server: http.Server;
  let baseUrl = '';
  before(async () => {
    server = http.createServer((req, res) => {
      requested.push(req.url ?? '');
      const body = files.get(req.url ?? '');
      if (!body) return void res.writeHead(404).end('no');
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('success: verified file lands in <cache>/models and findModelFile sees it', async () => {
    const cache = path.join(tmp, 'dl-ok');
    const body = files.get('/stories260K/tiny.bin')!;
    const p = await downloadTinyllama('tiny.bin', cache, { baseUrl, sha256: sha(body), remote: 'stories260K/tiny.bin' });
    assert.equal(p, path.join(cache, 'models', 'tiny.bin'));
    assert.deepEqual(fs.readFileSync(p), body);
    assert.deepEqual(fs.readdirSync(path.join(cache, 'models')), ['tiny.bin']);
    assert.equal(findModelFile('tiny.bin', { env: { NLA_CACHE: cache }, cwd: tmp }), p);
  });

  test('sha256 mismatch against the pinned hash: error, nothing left in the cache', async () => {
    const cache = path.join(tmp, 'dl-bad');
    await assert.rejects(downloadTinyllama('tok512.bin', cache, { baseUrl }), (e: Error) => {
      assert.match(e.message, /sha256 mismatch/);
      assert.ok(e.message.includes(TINYLLAMAS['tok512.bin']!.sha256));
      assert.ok(e.message.includes(sha(files.get('/stories260K/tok512.bin')!)));
      return true;
    });
    assert.ok(requested.includes('/stories260K/tok512.bin'), 'tok512.bin is fetched from the stories260K/ folder');
    assert.deepEqual(fs.readdirSync(path.join(cache, 'models')), []);
  });

  test('ensureModelFiles (scripts/setup.sh): found files stay, ../shared/models is copied into the cache, the rest downloaded', async () => {
    const root = path.join(tmp, 'ensure'), cwd = path.join(root, 'work');
    const env = { NLA_MODELS: path.join(root, 'env'), NLA_CACHE: path.join(root, 'cache') };
    fs.mkdirSync(cwd, { recursive: true });
    const own = put(path.join(env.NLA_MODELS, 'a.bin'), 'a');
    put(path.join(root, 'shared', 'models', 'b.bin'), 'b');
    const got = await ensureModelFiles(['a.bin', 'b.bin'], { env, cwd, baseUrl });
    assert.equal(got.get('a.bin'), own);
    assert.equal(got.get('b.bin'), path.join(env.NLA_CACHE, 'models', 'b.bin'));
    assert.equal(fs.readFileSync(got.get('b.bin')!, 'utf8'), 'b');
    assert.deepEqual(fs.readdirSync(path.join(env.NLA_CACHE, 'models')), ['b.bin'], 'no temp file left');
    assert.deepEqual(requested.filter((u) => /[ab]\.bin$/.test(u)), [], 'nothing downloaded');
    // tok512.bin is nowhere and the server's copy fails its sha256: the error says how to provide it.
    await assert.rejects(ensureModelFiles(['b.bin', 'tok512.bin'], { env, cwd, baseUrl }), (e: Error) => {
      assert.ok(e instanceof ModelNotFoundError);
      assert.match(e.message, /^model files not found: tok512\.bin\. Provide them in one of three ways:/);
      assert.match(e.message, /sha256 mismatch/);
      return true;
    });
  });

  test('missingModelsMessage names the files and the three ways: NLA_MODELS, the cache (download), ../shared/models', () => {
    const env = { NLA_CACHE: path.join(tmp, 'c') };
    const m = missingModelsMessage(['stories260K.bin', 'tok512.bin'], { env, cwd: path.join(tmp, 'w') });
    for (const s of ['stories260K.bin, tok512.bin', 'NLA_MODELS=', '(not set)', path.join(tmp, 'c', 'models'), 'downloads them', 'sha256', path.join(tmp, 'shared', 'models')]) {
      assert.ok(m.includes(s), `message should mention ${s}: ${m}`);
    }
    // Every place looked in is listed, one per file and place.
    assert.equal(m.split('\n').filter((l) => /^  \//.test(l)).length, 2 * 3);
    assert.ok(!missingModelsMessage(['mine.bin'], { env }).includes('downloads them'), 'no download offered for unknown files');
  });

  test('HTTP errors and unknown names without a hash are refused', async () => {
    const cache = path.join(tmp, 'dl-404');
    await assert.rejects(downloadTinyllama('stories260K.bin', cache, { baseUrl: baseUrl + '/' }), /HTTP 404/);
    assert.ok(requested.includes('/stories260K/stories260K.bin'));
    await assert.rejects(downloadTinyllama('other.bin', cache, { baseUrl }), /no known sha256/);
    assert.deepEqual(fs.readdirSync(path.join(cache, 'models')), []);
  });
});
