// riak_nodejs_test.js — drives a running cairnd with Basho's official, unmodified Riak
// Node.js client (npm basho-riak-client 2.4.0) through every client-protocol operation Cairn
// serves: ping, server info, client id (raw frames: the Node.js client has no command for
// it), get/put/delete, siblings and their resolution, return_body, server-generated keys,
// conditional puts, list keys/buckets (streaming), bucket properties get/set/reset.
// Usage: node riak_nodejs_test.js HOST:PORT. Exit status 0 when every check passes.
'use strict';
const Riak = require('basho-riak-client');
const net = require('net');
const assert = require('assert');
const { promisify } = require('util');

const addr = process.argv[2] || '127.0.0.1:8087';
const run = `compat${process.pid}`;
let failures = 0;
let passed = 0;

function call(client, method, options) {
    return new Promise((resolve, reject) => {
        const cb = (err, rslt) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(rslt));
        if (options === undefined) client[method](cb); else client[method](options, cb);
    });
}

async function check(name, fn) {
    try {
        await fn();
        passed++;
        console.log(`ok   ${name}`);
    } catch (e) {
        failures++;
        console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    }
}

// One raw request/response over the PB framing (for messages the client has no command for).
function rawRequest(code, body) {
    const [host, port] = addr.split(':');
    return new Promise((resolve, reject) => {
        const sock = net.connect(Number(port), host);
        const len = Buffer.alloc(5);
        len.writeUInt32BE(1 + body.length, 0);
        len[4] = code;
        let buf = Buffer.alloc(0);
        const timer = setTimeout(() => { sock.destroy(); reject(new Error('raw request timed out')); }, 5000);
        sock.on('connect', () => sock.write(Buffer.concat([len, body])));
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
                clearTimeout(timer);
                sock.end();
                resolve({ code: buf[4], body: buf.slice(5, 4 + buf.readUInt32BE(0)) });
            }
        });
        sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
}

async function main() {
    const client = await new Promise((resolve, reject) => {
        const c = new Riak.Client([addr], (err, cl) => (err ? reject(err) : resolve(cl)));
        void c;
    });

    await check('ping', async () => {
        assert.strictEqual(await call(client, 'ping'), true);
    });

    await check('server info', async () => {
        const info = await call(client, 'fetchServerInfo');
        assert.ok(info.node && info.node.length > 0, 'node name');
        assert.ok(/cairn/.test(info.server_version), `version ${info.server_version}`);
    });

    await check('client id get/set (raw frames 3..6)', async () => {
        const id = Buffer.from('ABCD');
        const set = await rawRequest(5, Buffer.concat([Buffer.from([0x0a, id.length]), id]));
        assert.strictEqual(set.code, 6);
        const get = await rawRequest(3, Buffer.alloc(0));
        assert.strictEqual(get.code, 4);
        assert.ok(get.body.length >= 2 && get.body[0] === 0x0a, 'client_id field present');
    });

    const bucket = `${run}-kv`;
    await check('put then get', async () => {
        await call(client, 'storeValue', { bucket, key: 'k1', value: 'hello' });
        const r = await call(client, 'fetchValue', { bucket, key: 'k1', convertToJs: false });
        assert.strictEqual(r.isNotFound, false);
        assert.strictEqual(r.values.length, 1);
        assert.strictEqual(r.values[0].value.toString(), 'hello');
        assert.ok(r.vclock && r.vclock.length > 0, 'vclock returned');
    });

    await check('get missing key is not found', async () => {
        const r = await call(client, 'fetchValue', { bucket, key: 'missing', convertToJs: false });
        assert.strictEqual(r.isNotFound, true);
    });

    await check('JSON value with content type and return_body', async () => {
        const obj = new Riak.Commands.KV.RiakObject();
        obj.setContentType('application/json');
        obj.setValue(JSON.stringify({ a: 1 }));
        obj.setUserMeta([{ key: 'owner', value: 'compat' }]);
        const r = await call(client, 'storeValue', { bucket, key: 'json', value: obj, returnBody: true });
        assert.strictEqual(r.values.length, 1);
        assert.strictEqual(r.values[0].getContentType(), 'application/json');
        const g = await call(client, 'fetchValue', { bucket, key: 'json', convertToJs: true });
        assert.deepStrictEqual(g.values[0].value, { a: 1 });
        assert.deepStrictEqual(g.values[0].userMeta, [{ key: 'owner', value: 'compat' }]);
    });

    await check('server-generated key', async () => {
        const r = await call(client, 'storeValue', { bucket, value: 'anon' });
        assert.ok(r.generatedKey && r.generatedKey.length > 0, 'generatedKey');
        const g = await call(client, 'fetchValue', { bucket, key: r.generatedKey, convertToJs: false });
        assert.strictEqual(g.values[0].value.toString(), 'anon');
    });

    await check('if_none_match refuses an existing key', async () => {
        await assert.rejects(call(client, 'storeValue', { bucket, key: 'k1', value: 'x', ifNoneMatch: true }));
        const g = await call(client, 'fetchValue', { bucket, key: 'k1', convertToJs: false });
        assert.strictEqual(g.values[0].value.toString(), 'hello');
    });

    const sbucket = `${run}-siblings`;
    await check('bucket props set allow_mult and read back', async () => {
        await call(client, 'storeBucketProps', { bucket: sbucket, allowMult: true });
        const p = await call(client, 'fetchBucketProps', { bucket: sbucket });
        assert.strictEqual(p.allowMult, true);
        assert.strictEqual(p.nVal, 3);
    });

    await check('two context-less writes make siblings; a write with the context resolves them', async () => {
        await call(client, 'storeValue', { bucket: sbucket, key: 's', value: 'one' });
        await call(client, 'storeValue', { bucket: sbucket, key: 's', value: 'two' });
        const r = await call(client, 'fetchValue', { bucket: sbucket, key: 's', convertToJs: false });
        const vals = r.values.map((v) => v.value.toString()).sort();
        assert.deepStrictEqual(vals, ['one', 'two']);
        const obj = new Riak.Commands.KV.RiakObject();
        obj.setValue('merged');
        await call(client, 'storeValue', { bucket: sbucket, key: 's', value: obj, vclock: r.vclock });
        const after = await call(client, 'fetchValue', { bucket: sbucket, key: 's', convertToJs: false });
        assert.strictEqual(after.values.length, 1);
        assert.strictEqual(after.values[0].value.toString(), 'merged');
    });

    await check('delete then not found', async () => {
        await call(client, 'storeValue', { bucket, key: 'gone', value: 'bye' });
        const r = await call(client, 'fetchValue', { bucket, key: 'gone', convertToJs: false });
        await call(client, 'deleteValue', { bucket, key: 'gone', vclock: r.vclock });
        const g = await call(client, 'fetchValue', { bucket, key: 'gone', convertToJs: false });
        assert.strictEqual(g.isNotFound, true);
    });

    await check('list keys (streamed and accumulated) omits deleted keys', async () => {
        const lb = `${run}-list`;
        for (let i = 0; i < 25; i++) await call(client, 'storeValue', { bucket: lb, key: `key${i}`, value: `v${i}` });
        await call(client, 'deleteValue', { bucket: lb, key: 'key0' });
        const acc = await call(client, 'listKeys', { bucket: lb, stream: false });
        assert.strictEqual(acc.keys.length, 24, `got ${acc.keys.length} keys`);
        assert.ok(!acc.keys.includes('key0'));
        const streamed = [];
        await new Promise((resolve, reject) => {
            client.listKeys({ bucket: lb, stream: true }, (err, rslt) => {
                if (err) return reject(err);
                streamed.push(...rslt.keys);
                if (rslt.done) resolve();
            });
        });
        assert.strictEqual(new Set(streamed).size, 24);
    });

    await check('list buckets', async () => {
        const r = await call(client, 'listBuckets', { stream: false });
        for (const b of [bucket, sbucket, `${run}-list`]) assert.ok(r.buckets.includes(b), `bucket ${b} listed`);
    });

    await check('bucket props reset', async () => {
        await call(client, 'resetBucketProps', { bucket: sbucket });
        const p = await call(client, 'fetchBucketProps', { bucket: sbucket });
        assert.strictEqual(p.allowMult, false);
    });

    await check('zero-length key is an error, connection keeps working', async () => {
        await assert.rejects(call(client, 'fetchValue', { bucket, key: '', convertToJs: false }));
        assert.strictEqual(await call(client, 'ping'), true);
    });

    await new Promise((resolve) => client.stop(() => resolve()));
    console.log(`riak-nodejs: ${passed} passed, ${failures} failed`);
    process.exit(failures ? 1 : 0);
}

const guard = setTimeout(() => { console.log('riak-nodejs: timed out'); process.exit(3); }, 120000);
guard.unref();
main().catch((e) => { console.log(`riak-nodejs: fatal: ${e && e.stack ? e.stack : e}`); process.exit(2); });
void promisify;
