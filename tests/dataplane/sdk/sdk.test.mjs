// The official OpenAI SDK (the `openai` npm package's AzureOpenAI client) pointed at
// spillway-agent works unchanged: chat completions, streaming, embeddings-free errors, and
// Realtime WebSocket sessions (OpenAIRealtimeWS, over the `ws` package).
// Starts real processes on free ports and stops them when done, or when the test dies
// (process_guard.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import OpenAI, { AzureOpenAI, toFile } from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { holdIfAsked, spawnGuarded } from './process_guard.mjs';

const MOCK = process.env.SPILLWAY_MOCK_AOAI_BIN;
const AGENT = process.env.SPILLWAY_AGENT_BIN;
const children = [];
let work;
let agentUrl;
let mockUrl;

function start(bin, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawnGuarded(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${bin} did not start: ${output}`)), 10000);
    const onData = (chunk) => {
      output += chunk.toString();
      const m = output.match(/listening on [0-9.]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited ${code}: ${output}`));
    });
  });
}

before(async () => {
  assert.ok(MOCK && AGENT, 'SPILLWAY_MOCK_AOAI_BIN and SPILLWAY_AGENT_BIN must be set');
  work = mkdtempSync(path.join(tmpdir(), 'spillway-sdk-'));
  const mockPort = await start(MOCK, ['--listen', '127.0.0.1:0', '--api-keys', 'backend-secret',
    '--deployments', 'gpt-4o-eus2:model=gpt-4o,rt-eus2:model=gpt-realtime', '--ms-per-token', '2']);
  mockUrl = `http://127.0.0.1:${mockPort}`;
  const keyHash = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'; // sha256("test")
  writeFileSync(path.join(work, 'topology.yaml'), `
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: mock, region: eastus2, subscription: s, endpoint: "${mockUrl}", insecure_http: true, auth: { api_key_env: SDK_TEST_BACKEND_KEY } }
deployments:
  - { instance: mock, name: gpt-4o-eus2, model: gpt-4o, version: "2024-08-06", sku: Standard, capacity: 100 }
  - { instance: mock, name: rt-eus2, model: gpt-realtime, version: "2025-08-28", sku: Standard, capacity: 100 }
pools: [ { name: p, members: [ { deployment: mock/gpt-4o-eus2 } ] }, { name: rt, members: [ { deployment: mock/rt-eus2 } ] } ]
routes: [ { name: gpt-4o, stamp: us, tiers: [ p ] }, { name: gpt-realtime, stamp: us, tiers: [ rt ] } ]
tenants:
  - { name: sdk, stamp: us, routes: [ gpt-4o, gpt-realtime ], api_keys: [ { name: k, sha256: ${keyHash} } ] }
`);
  const agentPort = await start(AGENT, ['--region', 'eastus2', '--listen', '127.0.0.1:0',
    '--topology', path.join(work, 'topology.yaml'), '--access-log', 'off'],
  { SDK_TEST_BACKEND_KEY: 'backend-secret' });
  agentUrl = `http://127.0.0.1:${agentPort}`;
  await holdIfAsked();
});

after(() => {
  for (const child of children) child.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

function client(apiKey = 'test') {
  return new AzureOpenAI({ endpoint: agentUrl, apiKey, apiVersion: '2024-10-21', maxRetries: 0 });
}

test('non-streaming chat completion through the agent', async () => {
  const completion = await client().chat.completions.create({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'Hello from the SDK test' }],
    max_tokens: 8,
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices.length, 1);
  assert.ok(completion.choices[0].message.content.length > 0);
  assert.ok(completion.usage.prompt_tokens > 0);
  assert.equal(completion.usage.completion_tokens, 8);
  assert.equal(completion.usage.total_tokens,
    completion.usage.prompt_tokens + completion.usage.completion_tokens);
});

test('raw response carries the gateway headers', async () => {
  const { response } = await client().chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2,
  }).withResponse();
  assert.equal(response.headers.get('x-spillway-backend'), 'mock/gpt-4o-eus2');
  assert.equal(response.headers.get('x-spillway-attempts'), '1');
  assert.ok(response.headers.get('x-request-id'));
});

test('streaming chat completion arrives as SDK chunks with usage', async () => {
  const stream = await client().chat.completions.create({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'Stream please' }],
    max_tokens: 12,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].delta?.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(chunks >= 12, `expected a chunk per token, got ${chunks}`);
  assert.ok(text.length > 0);
  assert.equal(finish, 'length');
  assert.ok(usage, 'the final usage chunk reached the SDK');
  assert.equal(usage.completion_tokens, 12);
});

test('a stream without include_usage reaches the SDK exactly as Azure sends it', async () => {
  // The agent asks the backend for usage (to meter the stream) and strips that chunk again.
  const collect = async (c, model) => {
    const stream = await c.chat.completions.create({
      model, messages: [{ role: 'user', content: 'Stream please' }], max_tokens: 6, stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    return chunks;
  };
  const viaAgent = await collect(client(), 'gpt-4o');
  const direct = await collect(new AzureOpenAI({
    endpoint: mockUrl, apiKey: 'backend-secret', apiVersion: '2024-10-21', maxRetries: 0,
  }), 'gpt-4o-eus2');
  const shape = (chunks) => chunks.map((c) => JSON.stringify({ ...c, id: '', created: 0 }));
  assert.deepEqual(shape(viaAgent), shape(direct));
  assert.ok(viaAgent.every((c) => c.usage === undefined), 'no usage chunk reached the SDK');
});

test('a wrong key is a 401 AuthenticationError in the SDK', async () => {
  await assert.rejects(
    client('not-a-key').chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err.status === 401 && /Access denied/.test(err.message));
});

test('an unknown route is a 404 NotFoundError in the SDK', async () => {
  await assert.rejects(
    client().chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err.status === 404 && err.code === 'DeploymentNotFound');
});

// The Responses API on /openai/v1 with the plain OpenAI client (key as Bearer): a stored
// response, a follow-up by previous_response_id, retrieve, a streamed response, delete.
test('Responses: create, follow up, retrieve, stream and delete through the agent', async () => {
  const v1 = new OpenAI({ baseURL: `${agentUrl}/openai/v1`, apiKey: 'test', maxRetries: 0 });
  const first = await v1.responses.create({ model: 'gpt-4o', input: 'Hello', max_output_tokens: 16 });
  assert.match(first.id, /^resp_/);
  assert.ok(first.output_text.length > 0);
  assert.ok(first.usage.input_tokens > 0);
  const second = await v1.responses.create({
    model: 'gpt-4o', input: 'And then?', previous_response_id: first.id, max_output_tokens: 16,
  });
  assert.equal(second.previous_response_id, first.id);
  assert.ok(second.usage.input_tokens > first.usage.input_tokens, 'the conversation grew');
  const retrieved = await v1.responses.retrieve(first.id);
  assert.equal(retrieved.id, first.id);

  const stream = await v1.responses.create({
    model: 'gpt-4o', input: 'Stream please', stream: true, previous_response_id: second.id,
  });
  const types = [];
  let completed = null;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.completed') completed = event.response;
  }
  assert.equal(types[0], 'response.created');
  assert.ok(types.includes('response.output_text.delta'));
  assert.ok(completed && completed.usage.output_tokens > 0);
  assert.equal((await v1.responses.retrieve(completed.id)).id, completed.id, 'a streamed response is pinned too');

  await v1.responses.delete(first.id);
  await assert.rejects(v1.responses.retrieve(first.id), (err) => err.status === 404);
});

test('Files: files.create uploads through the agent, and the file is found again', async () => {
  const v1 = new OpenAI({ baseURL: `${agentUrl}/openai/v1`, apiKey: 'test', maxRetries: 0 });
  const lines = '{"custom_id":"1","method":"POST","url":"/chat/completions","body":{}}\n';
  const file = await v1.files.create({
    file: await toFile(Buffer.from(lines.repeat(1000)), 'input.jsonl'), purpose: 'batch',
  });
  assert.match(file.id, /^file-/);
  assert.equal(file.bytes, lines.length * 1000);
  assert.equal(file.purpose, 'batch');
  const retrieved = await v1.files.retrieve(file.id);
  assert.equal(retrieved.id, file.id);
  const batch = await v1.batches.create({
    input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h',
  });
  assert.match(batch.id, /^batch_/);
  assert.equal(batch.input_file_id, file.id);
  await v1.files.delete(file.id);
  await assert.rejects(v1.files.retrieve(file.id), (err) => err.status === 404);
});

// Realtime. The SDK's client always dials wss:// (the URL is built from the client's base URL
// with the scheme forced); the agent serves plain HTTP, TLS being whatever fronts it. ws's own
// createConnection option opens the socket in clear; everything else is the SDK's.
const clearSocket = { createConnection: (options) => net.connect(options) };

// One conversation turn on an open OpenAIRealtimeWS: session.update, a user message and a
// response, collected up to response.done; then a close, whose code comes back.
async function realtimeTurn(rt) {
  const events = [];
  const seen = (type) => new Promise((resolve, reject) => {
    rt.on(type, resolve);
    rt.on('error', reject);
  });
  rt.on('event', (event) => events.push(event.type));
  const created = await seen('session.created');
  assert.equal(created.session.model, 'gpt-realtime');
  const updated = seen('session.updated');
  rt.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.' } });
  assert.equal((await updated).session.instructions, 'Be brief.');
  let text = '';
  rt.on('response.output_text.delta', (event) => { text += event.delta; });
  const done = seen('response.done');
  rt.send({
    type: 'conversation.item.create',
    item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello, realtime.' }] },
  });
  rt.send({ type: 'response.create', response: { max_output_tokens: 5 } });
  const response = (await done).response;
  assert.equal(response.status, 'completed');
  assert.equal(response.usage.output_tokens, 5);
  assert.ok(response.usage.input_tokens > 0);
  assert.equal(response.output[0].content[0].text, text);
  assert.ok(events.includes('conversation.item.added'));
  const closed = new Promise((resolve) => rt.socket.on('close', (code) => resolve(code)));
  rt.close({ code: 1000, reason: 'done' });
  assert.equal(await closed, 1000);
}

test('Realtime: OpenAIRealtimeWS.azure (api-key header, deployment=) through the agent', async () => {
  const azure = new AzureOpenAI({
    endpoint: agentUrl, apiKey: 'test', apiVersion: '2025-04-01-preview',
    deployment: 'gpt-realtime', maxRetries: 0,
  });
  const rt = await OpenAIRealtimeWS.azure(azure, { options: clearSocket });
  assert.match(rt.url.toString(), /\/openai\/realtime\?api-version=2025-04-01-preview&deployment=gpt-realtime$/);
  await realtimeTurn(rt);
});

test('Realtime: OpenAIRealtimeWS on /openai/v1 (Bearer key, model=) through the agent', async () => {
  const v1 = new OpenAI({ baseURL: `${agentUrl}/openai/v1`, apiKey: 'test', maxRetries: 0 });
  const rt = await OpenAIRealtimeWS.create(v1, { model: 'gpt-realtime', options: clearSocket });
  await realtimeTurn(rt);
});

test('Realtime: a wrong key is refused before the upgrade', async () => {
  const v1 = new OpenAI({ baseURL: `${agentUrl}/openai/v1`, apiKey: 'not-a-key', maxRetries: 0 });
  const rt = await OpenAIRealtimeWS.create(v1, { model: 'gpt-realtime', options: clearSocket });
  const status = await new Promise((resolve) => {
    rt.socket.on('unexpected-response', (request, response) => resolve(response.statusCode));
    rt.on('error', () => {});
  });
  assert.equal(status, 401);
});
