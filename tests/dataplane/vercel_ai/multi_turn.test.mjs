// The Vercel AI SDK (npm `ai` with `@ai-sdk/azure`) holding a multi-turn Responses
// conversation through a fleet of two agents, turn by turn on alternate agents, each turn
// chained to the last by previous response id: the way an app behind a load balancer talks.
// Starts a control plane, two mock backends and two agents on free ports; stops them all, also
// when the test dies (process_guard.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateText, streamText } from 'ai';
import { createAzure } from '@ai-sdk/azure';
import { guarded, holdIfAsked, spawnGuarded } from './process_guard.mjs';

const MOCK = process.env.SPILLWAY_MOCK_AOAI_BIN;
const AGENT = process.env.SPILLWAY_AGENT_BIN;
const CP = process.env.SPILLWAY_CP_BIN;
const CTL = process.env.SPILLWAYCTL_BIN;
// Debugging aid: every turn goes to agent A, which holds every pin itself. It separates a
// failure of the SDK's requests from one of pins not being known across agents.
const ONE_AGENT = process.env.SPILLWAY_VERCEL_ONE_AGENT === '1';
const BACKEND_KEY = 'backend-secret';
const TENANT_KEY = randomBytes(24).toString('hex');

const children = [];
let work;
const agents = {}; // name -> base URL

function start(name, bin, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawnGuarded(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${output}`)), 10000);
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
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited ${code ?? signal}: ${output}`));
    });
  });
}

// An agent following a control plane listens before its first table arrives; /readyz turns
// 200 once it has one and every route has a live backend.
async function waitReady(url) {
  const deadline = Date.now() + 15000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`);
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never became ready: ${last}`);
}

before(async () => {
  assert.ok(MOCK && AGENT && CP && CTL,
    'SPILLWAY_MOCK_AOAI_BIN, SPILLWAY_AGENT_BIN, SPILLWAY_CP_BIN and SPILLWAYCTL_BIN must be set');
  work = mkdtempSync(path.join(tmpdir(), 'spillway-vercel-ai-'));

  // Two instances behind one route, equal weights: a follow-up routed by weight alone lands
  // on the instance without the previous response half of the time.
  const mockA = await start('mock-a', MOCK, ['--listen', '127.0.0.1:0', '--api-keys', BACKEND_KEY,
    '--deployments', 'gpt-4o-a:model=gpt-4o']);
  const mockB = await start('mock-b', MOCK, ['--listen', '127.0.0.1:0', '--api-keys', BACKEND_KEY,
    '--deployments', 'gpt-4o-b:model=gpt-4o']);
  const cpPort = await start('spillway-cp', CP, ['--listen', '127.0.0.1:0',
    '--db', path.join(work, 'topology.db')]);

  const keyHash = createHash('sha256').update(TENANT_KEY).digest('hex');
  const topology = path.join(work, 'topology.yaml');
  writeFileSync(topology, `
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: mock-a, region: eastus2, subscription: s, endpoint: "http://127.0.0.1:${mockA}", insecure_http: true, auth: { api_key_env: VERCEL_TEST_BACKEND_KEY } }
  - { name: mock-b, region: eastus2, subscription: s, endpoint: "http://127.0.0.1:${mockB}", insecure_http: true, auth: { api_key_env: VERCEL_TEST_BACKEND_KEY } }
deployments:
  - { instance: mock-a, name: gpt-4o-a, model: gpt-4o, version: "2024-08-06", sku: Standard, capacity: 100 }
  - { instance: mock-b, name: gpt-4o-b, model: gpt-4o, version: "2024-08-06", sku: Standard, capacity: 100 }
pools: [ { name: p, members: [ { deployment: mock-a/gpt-4o-a }, { deployment: mock-b/gpt-4o-b } ] } ]
routes: [ { name: gpt-4o, stamp: us, tiers: [ p ] } ]
tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: ${keyHash} } ] }
`);
  const applied = spawnSync(...guarded(CTL, ['--server', `127.0.0.1:${cpPort}`, 'apply', '-f', topology]),
    { encoding: 'utf8', timeout: 20000 });
  assert.equal(applied.status, 0, `spillwayctl apply failed: ${applied.stdout}${applied.stderr}`);

  for (const name of ['a', 'b']) {
    const stateDir = path.join(work, `agent-${name}`);
    mkdirSync(stateDir);
    const port = await start(`agent-${name}`, AGENT, ['--region', 'eastus2', '--listen', '127.0.0.1:0',
      '--control-plane', `127.0.0.1:${cpPort}`, '--state-dir', stateDir, '--access-log', 'off'],
    { VERCEL_TEST_BACKEND_KEY: BACKEND_KEY });
    agents[name] = `http://127.0.0.1:${port}`;
    await waitReady(agents[name]);
  }
  if (ONE_AGENT) agents.b = agents.a;
  await holdIfAsked();
});

after(() => {
  for (const child of children) child.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

// The provider an app would build for one agent. A baseURL whose host is not an Azure one is
// a "custom gateway" to @ai-sdk/azure: it appends only the operation path (no /v1, no
// api-version), so the base names /openai/v1 for requests to reach /openai/v1/responses.
// azure('gpt-4o') is the Responses API model.
function providerFor(agent) {
  return createAzure({ baseURL: `${agents[agent]}/openai/v1`, apiKey: TENANT_KEY });
}

// The SDK's errors carry the status, headers and body: a failed turn names the backend that
// answered it, beside the one that holds the previous response.
function describe(err) {
  const backend = err.responseHeaders?.['x-spillway-backend'];
  return `${err.statusCode ?? ''} from ${backend ?? 'no backend'}: ${err.responseBody ?? err.message}`;
}

// @ai-sdk/azure reads its Responses options under `azure` (falling back to `openai`).
function chainedTo(previousResponseId) {
  return previousResponseId ? { azure: { previousResponseId } } : undefined;
}

// One turn with generateText on `agent`, chained to `previous` (null for the first turn).
// Asserts what proves the chain held and returns the turn's facts for the next one.
async function generateTurn(t, label, agent, prompt, previous, extra = {}) {
  let result;
  try {
    result = await generateText({
      model: providerFor(agent)('gpt-4o'),
      prompt,
      maxOutputTokens: 16,
      maxRetries: 0,
      providerOptions: chainedTo(previous?.id),
      include: { requestBody: true, responseBody: true }, // off by default since ai 7
      ...extra,
    });
  } catch (err) {
    assert.fail(`${label} via agent ${agent} (previous ${previous?.id} from ` +
      `${previous?.backend}) failed: ${describe(err)}`);
  }
  const id = result.providerMetadata?.azure?.responseId;
  assert.match(id ?? '', /^resp_/, `${label}: the response id reached the app`);
  assert.equal(result.response.id, id);
  assert.ok(result.text.length > 0, `${label}: text`);
  const sent = typeof result.request.body === 'string' ? JSON.parse(result.request.body)
    : result.request.body;
  assert.equal(sent.previous_response_id, previous?.id, `${label}: the SDK chained it`);
  assert.equal(result.response.body.previous_response_id ?? null, previous?.id ?? null,
    `${label}: the backend chained to the previous response`);
  const turn = {
    id,
    agent,
    backend: result.response.headers['x-spillway-backend'],
    inputTokens: result.usage.inputTokens,
    outputTokens: result.usage.outputTokens,
  };
  assert.ok(turn.backend, `${label}: the agent named its backend`);
  t.diagnostic(`${label} via agent ${agent} (${agents[agent]}): ${id} on ${turn.backend}, ` +
    `${turn.inputTokens} input tokens`);
  if (previous) assertContinues(label, turn, previous);
  return turn;
}

// The backend that created the conversation answers every turn of it, and it counted the
// whole history (earlier prompts and answers) into this turn's input.
function assertContinues(label, turn, previous) {
  assert.equal(turn.backend, previous.backend, `${label}: pinned to the backend that holds it`);
  assert.ok(turn.inputTokens > previous.inputTokens + previous.outputTokens,
    `${label}: ${turn.inputTokens} input tokens include the history ` +
    `(${previous.inputTokens} + ${previous.outputTokens})`);
}

const other = (agent) => (agent === 'a' ? 'b' : 'a');

test('a conversation chained by previous response id holds across alternating agents', async (t) => {
  const prompts = [
    'Hello, I am planning a trip to Lisbon.',
    'What should I see on the first day?',
    'And where should I eat in the evening?',
    'How do I get to Sintra from there?',
    'Summarise the plan in three lines.',
    'Thanks! Anything to avoid?',
  ];
  const turns = [];
  let previous = null;
  for (const [i, prompt] of prompts.entries()) {
    const agent = i % 2 === 0 ? 'a' : 'b';
    const system = i === 0 ? { system: 'You are a concise travel assistant.' } : {};
    previous = await generateTurn(t, `turn ${i + 1}`, agent, prompt, previous, system);
    turns.push(previous);
  }
  assert.equal(new Set(turns.map((turn) => turn.id)).size, turns.length,
    'every turn is a new response');

  // A streamed turn, chained the same way, on the agent that did not serve the last one.
  let agent = other(previous.agent);
  const result = streamText({
    model: providerFor(agent)('gpt-4o'),
    prompt: 'Stream the final checklist, please.',
    maxOutputTokens: 16,
    maxRetries: 0,
    providerOptions: chainedTo(previous.id),
  });
  let text = '';
  let deltas = 0;
  let streamError = null;
  for await (const part of result.fullStream) {
    if (part.type === 'text-delta') {
      text += part.text;
      deltas += 1;
    } else if (part.type === 'error') {
      streamError = part.error;
    }
  }
  assert.equal(streamError, null, `streamed turn via agent ${agent} (previous ${previous.id} ` +
    `from ${previous.backend}) failed: ${streamError && describe(streamError)}`);
  assert.ok(deltas > 1, `the answer arrived in pieces (${deltas})`);
  assert.equal(text, await result.text);
  const response = await result.response;
  const usage = await result.usage;
  const streamed = {
    id: (await result.providerMetadata)?.azure?.responseId,
    agent,
    backend: response.headers['x-spillway-backend'],
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
  };
  assert.match(streamed.id ?? '', /^resp_/, 'the streamed response id reached the app');
  assert.equal(response.id, streamed.id);
  t.diagnostic(`streamed turn via agent ${agent} (${agents[agent]}): ${streamed.id} on ` +
    `${streamed.backend}, ${streamed.inputTokens} input tokens`);
  assertContinues('streamed turn', streamed, previous);

  // The agent learns a streamed response's id from its first event: a last turn on the other
  // agent continues from it.
  agent = other(agent);
  await generateTurn(t, 'turn after the stream', agent, 'One more tip?', streamed);
});
