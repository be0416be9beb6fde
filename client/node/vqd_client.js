#!/usr/bin/env node
// Command-line client of the VQ-Diffusion gRPC service (vqdiffusion.v1.VqDiffusion), on
// @grpc/grpc-js. The .proto files are loaded at run time from the repository (proto/ and, for the
// health service, client/proto/), or from --proto-dir.
//
//   node vqd_client.js [--server HOST:PORT] [--timeout S] [--token T] [--tls ...] generate \
//       (--prompt TEXT | --class-label N) [--steps N] [--time-stride S] [--prior-rule R] [--guidance G] [--truncation R] [--num-images K] [--seed S] \
//       [--progress-every K] [--priority P] [--request-id ID] --out PREFIX [--save-tokens FILE] [--quiet]
//   node vqd_client.js [--server HOST:PORT] info [--json]
//   node vqd_client.js [--server HOST:PORT] health [--service NAME]
//
// Exit codes (as the C++ vqd-client): 0 success; 1 other errors; 2 usage error; 3 server
// unreachable; 4 server busy (RESOURCE_EXHAUSTED) or draining (UNAVAILABLE); 5 invalid request
// (INVALID_ARGUMENT); 6 UNAUTHENTICATED / PERMISSION_DENIED; 130 interrupted (Ctrl-C cancels the
// call; 143 for SIGTERM).
'use strict';

const fs = require('fs');
const path = require('path');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const DEFAULT_PROTO_DIR = path.join(REPO_ROOT, 'proto');
const STD_PROTO_DIR = path.join(REPO_ROOT, 'client', 'proto');
const CONNECT_TIMEOUT_S = 5;

const EXIT = { ok: 0, error: 1, usage: 2, unreachable: 3, rejected: 4, invalid: 5, auth: 6 };

const USAGE = `usage: vqd_client.js [global options] <command> [command options]

Commands:
  generate --prompt TEXT --out PREFIX [options]   writes PREFIX-<index>.png
  generate --class-label N --out PREFIX [options] (class-conditional models)
      --steps N --guidance G --truncation R --num-images K --seed S
      --time-stride S (official strided sampling: timesteps T-1, T-1-S, ... and 0)
      --prior-rule uniform|purity --prior-weight R (fixed-count unmasking, Improved VQ-Diffusion)
      --init-image PNG --strength X --mask PNG (editing and inpainting)
      --preview-every K (writes PREFIX-stepNN-<index>.png previews)
      --progress-every K (default 1 on a terminal, else 10; 0: none)
      --priority P --request-id ID --quiet
      --save-tokens FILE (the final token grids as JSON {"tokens": [[...], ...]})
  info [--json]             describe the model and the server's limits
  health [--service NAME]   check the server's health; exits 0 only when SERVING

Global options (before or after the command):
  --server HOST:PORT  (default localhost:50051)   --timeout SECONDS (whole call)
  --token TOKEN       --tls  --ca-cert FILE  --client-cert FILE  --client-key FILE
  --proto-dir DIR     folder holding vqdiffusion/v1/vqdiffusion.proto

Exit codes: 0 ok, 1 error, 2 usage, 3 unreachable, 4 busy/draining, 5 invalid request,
6 not authorized, 130 interrupted.
`;

class ClientError extends Error {
  constructor(message, code = EXIT.error) {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Command line

const GLOBAL_VALUED = ['server', 'timeout', 'token', 'ca-cert', 'client-cert', 'client-key', 'proto-dir'];
const GLOBAL_SWITCHES = ['tls', 'help'];
const COMMANDS = {
  generate: {
    valued: ['prompt', 'class-label', 'steps', 'time-stride', 'prior-rule', 'prior-weight', 'init-image', 'strength', 'mask', 'preview-every', 'guidance', 'truncation', 'num-images', 'seed', 'progress-every', 'priority',
      'request-id', 'out', 'save-tokens'],
    switches: ['quiet'],
  },
  info: { valued: [], switches: ['json'] },
  health: { valued: ['service'], switches: [] },
};

// Parses --name value, --name=value and switches; the first positional word is the command.
function parseArgs(argv) {
  const opts = {};
  const positional = [];
  const allValued = new Set(GLOBAL_VALUED);
  const allSwitches = new Set(GLOBAL_SWITCHES);
  for (const spec of Object.values(COMMANDS)) {
    spec.valued.forEach((n) => allValued.add(n));
    spec.switches.forEach((n) => allSwitches.add(n));
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      opts.help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      positional.push(arg);
      continue;
    }
    let name = arg.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (allSwitches.has(name)) {
      if (value !== undefined) throw new ClientError(`--${name} takes no value`, EXIT.usage);
      opts[name] = true;
    } else if (allValued.has(name)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new ClientError(`--${name} needs a value`, EXIT.usage);
        value = argv[++i];
      }
      opts[name] = value;
    } else {
      throw new ClientError(`unknown option --${name}`, EXIT.usage);
    }
  }
  if (opts.help) return { help: true };
  if (positional.length === 0) throw new ClientError('no command given', EXIT.usage);
  const command = positional[0];
  const spec = COMMANDS[command];
  if (!spec) throw new ClientError(`unknown command "${command}"`, EXIT.usage);
  if (positional.length > 1) throw new ClientError(`unexpected argument "${positional[1]}"`, EXIT.usage);
  const allowed = new Set([...GLOBAL_VALUED, ...GLOBAL_SWITCHES, ...spec.valued, ...spec.switches]);
  for (const name of Object.keys(opts)) {
    if (!allowed.has(name)) throw new ClientError(`${command}: unknown option --${name}`, EXIT.usage);
  }
  return { command, opts };
}

function uintOption(opts, name, max) {
  if (opts[name] === undefined) return undefined;
  const text = opts[name];
  if (!/^\d+$/.test(text) || BigInt(text) > max) {
    throw new ClientError(`--${name} must be an integer in [0, ${max}], got "${text}"`, EXIT.usage);
  }
  return max > BigInt(Number.MAX_SAFE_INTEGER) ? text : Number(text);  // uint64: a decimal string
}

function int32Option(opts, name) {
  if (opts[name] === undefined) return undefined;
  const text = opts[name];
  const value = Number(text);
  if (!/^-?\d+$/.test(text) || value < -(2 ** 31) || value >= 2 ** 31) {
    throw new ClientError(`--${name} must be a 32-bit integer, got "${text}"`, EXIT.usage);
  }
  return value;
}

function numberOption(opts, name) {
  if (opts[name] === undefined) return undefined;
  const value = Number(opts[name]);
  if (opts[name].trim() === '' || Number.isNaN(value)) {
    throw new ClientError(`--${name} must be a number, got "${opts[name]}"`, EXIT.usage);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// gRPC

let grpc;
let protoLoader;

function loadPackage(protoFile, includeDir) {
  const full = path.join(includeDir, protoFile);
  if (!fs.existsSync(full)) throw new ClientError(`${protoFile} not found under ${includeDir} (use --proto-dir)`, EXIT.usage);
  const definition = protoLoader.loadSync(protoFile, {
    includeDirs: [includeDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

function readInput(file) {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new ClientError(`cannot read ${file}: ${e.message}`, EXIT.usage);
  }
}

function readPem(file) {
  if (!file) return null;
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new ClientError(`cannot read ${file}: ${e.message}`, EXIT.usage);
  }
}

function credentials(opts) {
  if (!opts.tls) {
    if (opts['ca-cert'] || opts['client-cert'] || opts['client-key']) {
      throw new ClientError('--ca-cert, --client-cert and --client-key need --tls', EXIT.usage);
    }
    return grpc.credentials.createInsecure();
  }
  if (!opts['client-cert'] !== !opts['client-key']) {
    throw new ClientError('--client-cert and --client-key go together', EXIT.usage);
  }
  return grpc.credentials.createSsl(readPem(opts['ca-cert']), readPem(opts['client-key']),
    readPem(opts['client-cert']));
}

// The connection and the call's options (deadline, bearer token).
class Connection {
  constructor(opts) {
    this.opts = opts;
    this.server = opts.server || 'localhost:50051';
    this.timeout = numberOption(opts, 'timeout');
    if (this.timeout !== undefined && !(this.timeout > 0)) throw new ClientError('--timeout must be positive', EXIT.usage);
    this.deadline = this.timeout === undefined ? undefined : Date.now() + this.timeout * 1000;
    this.creds = credentials(opts);
    this.channelOptions = { 'grpc.max_receive_message_length': 256 << 20 };
  }

  client(Service) {
    const c = new Service(this.server, this.creds, this.channelOptions);
    this.clients = (this.clients || []).concat([c]);
    return c;
  }

  metadata() {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set('authorization', `Bearer ${this.opts.token}`);
    return md;
  }

  callOptions() {
    return this.deadline === undefined ? {} : { deadline: this.deadline };
  }

  // Waits for the connection (5 s, or until --timeout's deadline); exit code 3 when it fails.
  async waitConnected(client, probe) {
    const deadline = this.deadline === undefined ? Date.now() + CONNECT_TIMEOUT_S * 1000 : this.deadline;
    const started = Date.now();
    try {
      await new Promise((resolve, reject) => client.waitForReady(deadline, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      // waitForReady does not say why; a short probe call does ("ECONNREFUSED", TLS errors, ...).
      let why = `no connection within ${((Date.now() - started) / 1000).toFixed(1)} s`;
      const detail = await probe(Date.now() + 1000);
      if (detail) why = String(detail).replace(/\s*Resolution note:\s*$/, '');
      throw new ClientError(`cannot reach server at ${this.server}: ${why}`, EXIT.unreachable);
    }
  }

  close() {
    for (const c of this.clients || []) c.close();
  }
}

function callError(err, conn) {
  const s = grpc.status;
  const details = String(err.details || err.message).replace(/\s*Resolution note:\s*$/, '');
  switch (err.code) {
    case s.RESOURCE_EXHAUSTED: return new ClientError(`server busy: ${details}`, EXIT.rejected);
    case s.UNAVAILABLE: return new ClientError(`server unavailable (draining or not ready): ${details}`, EXIT.rejected);
    case s.INVALID_ARGUMENT: return new ClientError(`invalid request: ${details}`, EXIT.invalid);
    case s.UNAUTHENTICATED:
    case s.PERMISSION_DENIED:
      return new ClientError(`not authorized (${s[err.code]}): ${details}` +
        (conn.opts.token ? '' : ' (the server may need --token)'), EXIT.auth);
    case s.DEADLINE_EXCEEDED:
      return new ClientError(conn.timeout !== undefined
        ? `deadline exceeded after --timeout ${conn.timeout} s: ${details}` : `deadline exceeded: ${details}`);
    default:
      return new ClientError(`call failed (${s[err.code] || err.code}): ${details}`);
  }
}

function unary(client, method, request, conn) {
  return new Promise((resolve, reject) => {
    client[method](request, conn.metadata(), conn.callOptions(), (err, resp) => {
      if (err) reject(err.code !== undefined ? callError(err, conn) : err);
      else resolve(resp);
    });
  });
}

function vqdService(conn) {
  const pkg = loadPackage('vqdiffusion/v1/vqdiffusion.proto', conn.opts['proto-dir'] || DEFAULT_PROTO_DIR);
  return pkg.vqdiffusion.v1.VqDiffusion;
}

async function connectVqd(conn) {
  const client = conn.client(vqdService(conn));
  await conn.waitConnected(client, (deadline) => new Promise((resolve) => {
    client.GetModelInfo({}, conn.metadata(), { deadline }, (err) => resolve(
      err && err.code === grpc.status.UNAVAILABLE ? err.details : undefined));
  }));
  return client;
}

// ---------------------------------------------------------------------------------------------
// Commands

async function cmdInfo(conn, opts) {
  const client = await connectVqd(conn);
  const info = await unary(client, 'GetModelInfo', {}, conn);
  if (opts.json) {
    console.log(JSON.stringify(info, null, 2));
    return EXIT.ok;
  }
  const lim = info.limits || {};
  const rows = [
    ['model', info.model_name],
    ['server version', info.server_version],
    ['image', `${info.image_width} x ${info.image_height} pixels`],
    ['token grid', `${info.grid_width} x ${info.grid_height}`],
    ['codebook', `${info.codebook_size} codes (mask token ${info.mask_token})`],
    ['timesteps', String(info.num_train_timesteps)],
    ['prompt tokens', String(info.max_prompt_tokens)],
    ['devices', (info.devices || []).join(', ') || '-'],
    ['dtype', info.dtype],
    ['conditioning', info.conditioning === 'class_label' ? `class label in [0, ${info.num_classes})` : 'text prompt'],
    ['null embeddings', info.learned_null_embeddings ? 'learned'
      : info.conditioning === 'class_label' ? 'mean class' : 'empty prompt'],
    ['sampler', `${info.sampler} (defaults: guidance ${info.default_guidance_scale}, ` +
      `truncation ${Math.round(info.default_truncation_rate * 1e6) / 1e6})`],
    ['limits', `max_images ${lim.max_images}, max_steps ${lim.max_steps}, max_batch_rows ${lim.max_batch_rows}, ` +
      `max_queue ${lim.max_queue}, max_prompt_bytes ${lim.max_prompt_bytes}`],
  ];
  for (const [name, value] of rows) console.log(`${(name + ':').padEnd(17)}${value}`);
  return EXIT.ok;
}

async function cmdHealth(conn, opts) {
  const pkg = loadPackage('grpc/health/v1/health.proto', STD_PROTO_DIR);
  const client = conn.client(pkg.grpc.health.v1.Health);
  await conn.waitConnected(client, (deadline) => new Promise((resolve) => {
    client.Check({}, new grpc.Metadata(), { deadline }, (err) => resolve(
      err && err.code === grpc.status.UNAVAILABLE ? err.details : undefined));
  }));
  let resp;
  try {
    resp = await unary(client, 'Check', { service: opts.service || '' }, conn);
  } catch (e) {
    if (e.message.startsWith('call failed (NOT_FOUND)')) {
      throw new ClientError(`the server does not know service "${opts.service}"`);
    }
    throw e;
  }
  console.log(resp.status);
  return resp.status === 'SERVING' ? EXIT.ok : EXIT.error;
}

// Progress output on stderr: a redrawn bar on a terminal, one line per event otherwise.
class ProgressOutput {
  constructor(quiet) {
    this.quiet = quiet;
    this.tty = Boolean(process.stderr.isTTY) && !quiet;
    this.barShown = false;
    this.queuedAt = undefined;
    this.queueSeconds = undefined;
  }

  line(text) {
    if (this.quiet) return;
    this.endBar();
    process.stderr.write(`${text}\n`);
  }

  queued(q) {
    this.queuedAt = process.hrtime.bigint();
    this.line(`queued: request ${q.request_id} at position ${q.position}`);
  }

  started(s) {
    if (this.queuedAt !== undefined) this.queueSeconds = Number(process.hrtime.bigint() - this.queuedAt) / 1e9;
    this.line(`started: request ${s.request_id} on ${s.device}, seed ${s.seed}`);
  }

  progress(p) {
    if (this.quiet) return;
    let text = `step ${p.step}/${p.total_steps} t=${p.timestep} masked ${(100 * p.masked_fraction).toFixed(1)}%`;
    if (this.queueSeconds !== undefined) text += `  queued ${this.queueSeconds.toFixed(1)}s`;
    if (!this.tty) {
      this.line(text);
      return;
    }
    const width = 30;
    const filled = Math.min(width, Math.floor((width * p.step) / Math.max(p.total_steps, 1)));
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
    this.barShown = true;
  }

  endBar() {
    const was = this.barShown;
    if (was) process.stderr.write('\n');
    this.barShown = false;
    return was;
  }
}

// Writes the final grids as the C++ client does: {"tokens": [[...], ...], "height": H, "width": W}.
function writeTokens(file, grids) {
  const order = [...grids.keys()].sort((a, b) => a - b);
  const doc = { tokens: order.map((i) => grids.get(i).tokens.map(Number)) };
  if (order.length > 0) {
    doc.height = grids.get(order[0]).height;
    doc.width = grids.get(order[0]).width;
  }
  try {
    fs.writeFileSync(file, `${JSON.stringify(doc)}\n`);
  } catch (e) {
    throw new ClientError(`cannot write ${file}: ${e.message}`);
  }
}

async function cmdGenerate(conn, opts) {
  if ((opts.prompt === undefined) === (opts['class-label'] === undefined)) {
    throw new ClientError('generate: --prompt (text models) or --class-label (class models) is required', EXIT.usage);
  }
  if (!opts.out) throw new ClientError('generate: --out is required', EXIT.usage);
  const U32 = 0xffffffffn;
  const request = { prompt: opts.prompt !== undefined ? opts.prompt : '' };
  // Only the fields the user gave, so that the server applies its defaults to the others.
  const optional = {
    steps: uintOption(opts, 'steps', U32),
    time_stride: uintOption(opts, 'time-stride', U32),
    num_images: uintOption(opts, 'num-images', U32),
    seed: uintOption(opts, 'seed', 0xffffffffffffffffn),
    guidance_scale: numberOption(opts, 'guidance'),
    truncation_rate: numberOption(opts, 'truncation'),
    class_label: int32Option(opts, 'class-label'),
    prior_weight: numberOption(opts, 'prior-weight'),
    strength: numberOption(opts, 'strength'),
    preview_interval: uintOption(opts, 'preview-every', U32),
    init_image: opts['init-image'] !== undefined ? readInput(opts['init-image']) : undefined,
    mask: opts.mask !== undefined ? readInput(opts.mask) : undefined,
  };
  if (opts['prior-rule'] !== undefined && opts['prior-rule'] !== 'none') {
    if (!['uniform', 'purity'].includes(opts['prior-rule'])) {
      throw new ClientError(`--prior-rule must be none, uniform or purity, got ${opts['prior-rule']}`, EXIT.usage);
    }
    request.prior_rule = `PRIOR_RULE_${opts['prior-rule'].toUpperCase()}`;
  }
  for (const [field, value] of Object.entries(optional)) if (value !== undefined) request[field] = value;
  const quiet = Boolean(opts.quiet);
  const every = uintOption(opts, 'progress-every', U32);
  request.progress_interval = every !== undefined ? every : quiet ? 0 : process.stderr.isTTY ? 1 : 10;
  if (opts.priority !== undefined) request.priority = int32Option(opts, 'priority');
  if (opts['request-id'] !== undefined) request.request_id = opts['request-id'];
  const parent = path.dirname(opts.out);
  fs.mkdirSync(parent, { recursive: true });

  const client = await connectVqd(conn);
  const out = new ProgressOutput(quiet);
  let seed;
  let done;
  const grids = new Map();
  let signalled = 0;
  const call = client.Generate(request, conn.metadata(), conn.callOptions());
  const onSignal = (name) => {
    signalled = name === 'SIGINT' ? 130 : 143;
    call.cancel();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await new Promise((resolve, reject) => {
      call.on('data', (ev) => {
        try {
          switch (ev.event) {
            case 'queued': out.queued(ev.queued); break;
            case 'started': seed = ev.started.seed; out.started(ev.started); break;
            case 'progress': out.progress(ev.progress); break;
            case 'preview':
              ev.preview.pngs.forEach((png, i) => {
                const file = `${opts.out}-step${String(ev.preview.step).padStart(2, '0')}-${i}.png`;
                fs.writeFileSync(file, png);
                out.line(`preview: wrote ${file} (${ev.preview.width}x${ev.preview.height}, step ${ev.preview.step})`);
              });
              break;
            case 'image': {
              const img = ev.image;
              seed = img.seed;
              const file = `${opts.out}-${img.index}.png`;
              fs.writeFileSync(file, img.png);
              grids.set(img.index, img.grid);
              out.endBar();
              if (!quiet) console.log(`wrote ${file} (${img.width}x${img.height}, seed ${img.seed})`);
              break;
            }
            case 'done': done = ev.done; break;
            default: break;  // An event type newer than this client.
          }
        } catch (e) {
          call.cancel();
          reject(new ClientError(e.message));
        }
      });
      call.on('error', (err) => reject(err));
      call.on('end', resolve);
    });
  } catch (err) {
    const barWasShown = out.endBar();
    if (signalled) {
      // On a terminal, "^C" was echoed at the end of the last line.
      throw new ClientError(`${process.stderr.isTTY && !barWasShown ? '\n' : ''}interrupted: call cancelled`, signalled);
    }
    throw err instanceof ClientError ? err : callError(err, conn);
  } finally {
    out.endBar();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (!done) throw new ClientError('the stream ended without a Done event');
  if (opts['save-tokens']) writeTokens(opts['save-tokens'], grids);
  if (!quiet) {
    const f = (x) => Number(x).toFixed(2);
    console.log(`done: request ${done.request_id}, ${done.steps} steps, seed ${seed}; queue ${f(done.queue_seconds)}s, ` +
      `encode ${f(done.encode_seconds)}s, denoise ${f(done.denoise_seconds)}s, decode ${f(done.decode_seconds)}s, ` +
      `total ${f(done.total_seconds)}s`);
  }
  return EXIT.ok;
}

// ---------------------------------------------------------------------------------------------

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`error: ${e.message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  try {
    grpc = require('@grpc/grpc-js');
    protoLoader = require('@grpc/proto-loader');
  } catch (e) {
    process.stderr.write(`error: ${e.message}\n(run "npm ci --prefix ${__dirname}" first)\n`);
    return EXIT.error;
  }
  let conn;
  try {
    conn = new Connection(parsed.opts);
    const run = { generate: cmdGenerate, info: cmdInfo, health: cmdHealth }[parsed.command];
    return await run(conn, parsed.opts);
  } catch (e) {
    if (!(e instanceof ClientError)) {
      if (e.code !== undefined && typeof e.code === 'number' && conn) e = callError(e, conn);
      else e = new ClientError(e.message);
    }
    process.stderr.write(`${e.code >= 128 ? '' : 'error: '}${e.message}\n`);
    if (e.code === EXIT.usage) process.stderr.write(`\n${USAGE}`);
    return e.code;
  } finally {
    if (conn) conn.close();
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
