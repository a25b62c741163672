/**
 * The deployment files say what the code does: the Kubernetes manifests (rendered by
 * `kubectl kustomize deploy/k8s`) probe the coordinator's real health routes on its port,
 * keep the keys in a Secret and leave migrations to the Job; docker-compose.yml publishes on
 * loopback only and starts nothing before what it needs is healthy; the Dockerfile copies
 * files that exist and runs the server the package build emits. No network, no cluster.
 *
 * YAML is turned into JSON by kubectl itself (`kubectl label --local -o json`, which reads
 * files offline), as the project has no YAML parser of its own: without kubectl on PATH
 * the manifest and compose checks are skipped, saying so; the Dockerfile checks always run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { describe, expect, it } from 'vitest';
import { CoordinatorConfig, CoordinatorEnv, loadCoordinatorEnv } from '../../apps/coordinator/src/config/coordinator.config.js';
import { EgressPolicy } from '../../apps/coordinator/src/participants/egress-policy.js';
import { parseParticipantHosts } from '../../apps/coordinator/src/participants/participant-hosts.js';
import { HealthController } from '../../apps/coordinator/src/health/health.controller.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The built server: what the Dockerfile's CMD and the Deployment run. */
const SERVER_ENTRY = 'apps/coordinator/dist/main.js';
/** The `nest-dtx` command, as the coordinator package declares its bin. */
const CLI_ENTRY = posix.join('apps/coordinator', (JSON.parse(read('apps/coordinator/package.json')) as { bin: Record<string, string> }).bin['nest-dtx']);

// ---- YAML through kubectl ----------------------------------------------------------------

const KUBECTL_ENV = { ...process.env, KUBECONFIG: '/dev/null' };
const kubectlFound = spawnSync('kubectl', ['version', '--client'], { env: KUBECTL_ENV }).status === 0;
const SKIP_REASON = 'SKIPPED: kubectl is not on PATH, so deploy/k8s cannot be rendered nor YAML parsed';
if (!kubectlFound) process.stderr.write(`deploy-manifests: ${SKIP_REASON}\n`);

function kubectl(args: string[], input?: string): string {
  const run = spawnSync('kubectl', args, { cwd: ROOT, env: KUBECTL_ENV, input, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${run.stderr}`);
  return run.stdout;
}

/** Kubernetes objects (YAML, `---` separated) as JSON, converted offline by kubectl. */
function objectsOf(yaml: string): Manifest[] {
  const json = kubectl(['label', '--local', '-f', '-', '-o', 'json', 'nest-dtx-unused-'], yaml);
  // kubectl prints one indented object after another: a `}` alone on a line ends one.
  return json.split(/^}$/m).filter((part) => part.trim() !== '').map((part) => JSON.parse(`${part}}`) as Manifest);
}

/** Any YAML document, wrapped as the one field of a made-up object so kubectl converts it. */
function parseYaml(yaml: string): unknown {
  const wrapped = `apiVersion: test.nest-dtx/v1\nkind: Wrapped\nmetadata:\n  name: wrapped\ncontent:\n${yaml.replace(/^/gm, '  ')}\n`;
  return (objectsOf(wrapped)[0] as unknown as { content: unknown }).content;
}

// ---- The parts of the objects the checks read ---------------------------------------------

type Labels = Record<string, string>;
interface Manifest { kind: string; metadata: { name: string; labels?: Labels } }
interface Probe {
  httpGet?: { path: string; port: string | number };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
}
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }
interface Container {
  image: string;
  args?: string[];
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodTemplate {
  metadata: { labels: Labels };
  spec: { containers: Container[]; securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }; volumes?: { name: string; emptyDir?: object }[] };
}
interface Deployment extends Manifest { spec: { replicas: number; selector: { matchLabels: Labels }; template: PodTemplate } }
interface Job extends Manifest { spec: { template: PodTemplate } }
interface Service extends Manifest { spec: { selector: Labels; ports: { port: number; targetPort: string | number }[] } }
interface Budget extends Manifest { spec: { minAvailable?: number | string; selector: { matchLabels: Labels } } }
interface DataObject extends Manifest { data: Record<string, string> }

const selects = (selector: Labels, labels: Labels): boolean => Object.entries(selector).every(([key, value]) => labels[key] === value);
const envOf = (container: Container): Map<string, EnvVar> => new Map((container.env ?? []).map((variable) => [variable.name, variable]));

/** The routes HealthController declares, as the router will serve them. */
function healthRoute(method: 'live' | 'ready'): string {
  const base = Reflect.getMetadata(PATH_METADATA, HealthController) as string;
  const path = Reflect.getMetadata(PATH_METADATA, HealthController.prototype[method]) as string;
  return `/${base}/${path}`;
}

describe.skipIf(!kubectlFound)(kubectlFound ? 'deploy/k8s, as kubectl kustomize renders it' : `deploy/k8s: ${SKIP_REASON}`, () => {
  const objects = kubectlFound ? objectsOf(kubectl(['kustomize', 'deploy/k8s'])) : [];
  const one = <T extends Manifest>(kind: string): T => {
    const found = objects.filter((object) => object.kind === kind);
    expect(found, `exactly one ${kind}`).toHaveLength(1);
    return found[0] as T;
  };
  const deployment = (): Deployment => one<Deployment>('Deployment');
  const server = (): Container => deployment().spec.template.spec.containers[0];
  const job = (): Job => one<Job>('Job');
  const secret = (): DataObject => one<DataObject>('Secret');
  const config = (): DataObject => one<DataObject>('ConfigMap');

  it('runs two replicas of the built server, and the Job runs `nest-dtx migrate` from the same image', () => {
    expect(deployment().spec.replicas).toBe(2);
    expect(server().command).toBeUndefined(); // the image's tini entrypoint stays
    expect(server().args).toEqual(['node', SERVER_ENTRY]);
    const migrate = job().spec.template.spec.containers[0];
    expect(migrate.command).toBeUndefined();
    expect(migrate.args).toEqual(['node', CLI_ENTRY, 'migrate']);
    expect(migrate.image).toBe(server().image);
  });

  it('probes the health routes the coordinator serves, on the port it listens on', () => {
    expect(healthRoute('ready')).toBe('/health/ready');
    expect(healthRoute('live')).toBe('/health/live');
    const { readinessProbe, livenessProbe, startupProbe, ports } = server();
    expect(readinessProbe?.httpGet?.path).toBe(healthRoute('ready'));
    expect(livenessProbe?.httpGet?.path).toBe(healthRoute('live'));
    expect([healthRoute('live'), healthRoute('ready')]).toContain(startupProbe?.httpGet?.path);
    const port = ports![0];
    expect(port.containerPort).toBe(Number(config().data.PORT));
    for (const probe of [readinessProbe, livenessProbe, startupProbe]) expect([port.name, port.containerPort]).toContain(probe?.httpGet?.port);
  });

  it('lets a coordinator started before Postgres wait for it: the startupProbe outlasts DATABASE_CONNECT_TIMEOUT_MS', () => {
    // The server listens only once Postgres answers (database/database.module.ts): until then
    // only the startupProbe runs, and it must not give up before the coordinator does.
    const { startupProbe } = server();
    // Kubernetes' defaults for the fields left out.
    const windowMs = ((startupProbe?.initialDelaySeconds ?? 0) + (startupProbe?.periodSeconds ?? 10) * (startupProbe?.failureThreshold ?? 3)) * 1000;
    const settings = config().data;
    const real = { API_KEYS: 'admin:0123456789abcdef0123', DATABASE_URL: 'postgres://db/coordinator' };
    const waitMs = loadCoordinatorEnv({ ...settings, ...real }).DATABASE_CONNECT_TIMEOUT_MS;
    expect(waitMs).toBeGreaterThan(0);
    // The rest of the start (migrations checked, the pool opened, Nest) within 30 s of it.
    expect(windowMs).toBeGreaterThanOrEqual(waitMs + 30_000);
  });

  it('leaves migrations to the Job: the Deployment sets MIGRATIONS_RUN=false', () => {
    expect(envOf(server()).get('MIGRATIONS_RUN')?.value).toBe('false');
    expect(envOf(job().spec.template.spec.containers[0]).get('MIGRATIONS_RUN')).toBeUndefined();
  });

  it('takes the keys and URLs from the Secret, under the names the configuration reads', () => {
    const known = new CoordinatorEnv();
    const env = envOf(server());
    for (const name of ['API_KEYS', 'SIGNING_SECRET', 'DATABASE_URL', 'REDIS_URL']) {
      expect(name in known, `${name} is a coordinator setting`).toBe(true);
      const ref = env.get(name)?.valueFrom?.secretKeyRef;
      expect(ref, `${name} comes from a Secret`).toMatchObject({ name: secret().metadata.name, key: name });
      expect(env.get(name)?.value).toBeUndefined();
      expect(Object.keys(secret().data)).toContain(name);
      expect(Object.keys(config().data)).not.toContain(name);
    }
    expect(envOf(job().spec.template.spec.containers[0]).get('DATABASE_URL')?.valueFrom?.secretKeyRef?.name).toBe(secret().metadata.name);
    expect(server().envFrom).toEqual([{ configMapRef: { name: config().metadata.name } }]);
  });

  it('listens on 0.0.0.0, which the configuration accepts with API keys and the placeholders never satisfy', () => {
    const settings = config().data;
    expect(settings.HOST).toBe('0.0.0.0');
    const placeholders = Object.fromEntries(Object.entries(secret().data).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
    const real = { API_KEYS: 'admin:0123456789abcdef0123', SIGNING_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://db/coordinator', REDIS_URL: 'redis://redis:6379' };
    // A placeholder left in place stops the coordinator, naming it (the URLs fail on connecting).
    expect(() => loadCoordinatorEnv({ ...settings, ...placeholders })).toThrow(/invalid configuration/);
    for (const name of ['API_KEYS', 'SIGNING_SECRET']) {
      expect(() => loadCoordinatorEnv({ ...settings, ...real, [name]: placeholders[name] })).toThrow(new RegExp(`invalid configuration: ${name}`));
    }
    expect(loadCoordinatorEnv({ ...settings, ...real }).HOST).toBe('0.0.0.0');
    // Pods and Services have private addresses: with API keys the default (public only) would refuse them.
    expect(new CoordinatorConfig(loadCoordinatorEnv({ ...settings, ...real })).participantNetworks.describe()).toBe('private');
    expect(() => loadCoordinatorEnv({ ...settings, ...real, API_KEYS: undefined })).toThrow(/set API_KEYS/);
  });

  it('runs as a non-root user on a read-only root file system, with an emptyDir /tmp', () => {
    for (const template of [deployment().spec.template, job().spec.template]) {
      const container = template.spec.containers[0];
      expect(template.spec.securityContext?.runAsNonRoot).toBe(true);
      expect(template.spec.securityContext?.runAsUser).toBeGreaterThan(0);
      expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      const tmp = container.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
      expect(template.spec.volumes?.find((volume) => volume.name === tmp?.name)?.emptyDir).toBeDefined();
    }
  });

  it("selects the Deployment's pods, not the Job's, in the Service and the disruption budget", () => {
    const pods = deployment().spec.template.metadata.labels;
    const migratePods = job().spec.template.metadata.labels;
    expect(selects(deployment().spec.selector.matchLabels, pods)).toBe(true);
    const budget = one<Budget>('PodDisruptionBudget');
    expect(budget.spec.minAvailable).toBe(1);
    const service = one<Service>('Service');
    for (const selector of [budget.spec.selector.matchLabels, service.spec.selector]) {
      expect(Object.keys(selector).length).toBeGreaterThan(0);
      expect(selects(selector, pods)).toBe(true);
      expect(selects(selector, migratePods)).toBe(false);
    }
    const port = server().ports![0];
    expect([port.name, port.containerPort]).toContain(service.spec.ports[0].targetPort);
  });
});

// ---- docker-compose.yml -------------------------------------------------------------------

interface ComposeService {
  build?: unknown;
  command?: string[];
  ports?: (string | { host_ip?: string; published?: string | number })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  restart?: string;
  environment?: Record<string, string>;
}

describe.skipIf(!kubectlFound)(kubectlFound ? 'docker-compose.yml' : `docker-compose.yml: ${SKIP_REASON}`, () => {
  const services = kubectlFound ? (parseYaml(read('docker-compose.yml')) as { services: Record<string, ComposeService> }).services : {};

  it('publishes every port on 127.0.0.1 only', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) {
        const loopback = typeof port === 'string' ? port.startsWith('127.0.0.1:') : port.host_ip === '127.0.0.1';
        expect(loopback, `${name} publishes ${JSON.stringify(port)}`).toBe(true);
      }
    }
  });

  it('starts a service only once what it depends on is healthy, and everything depended on has a health check', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.depends_on === undefined) continue;
      expect(Array.isArray(service.depends_on), `${name}: depends_on needs conditions`).toBe(false);
      for (const [dependency, { condition }] of Object.entries(service.depends_on)) {
        expect(condition, `${name} waits on ${dependency}`).toBe('service_healthy');
        expect(services[dependency]?.healthcheck?.test, `${dependency} has a health check`).toBeDefined();
      }
    }
  });

  it("checks the coordinator's readiness route, with the script the image carries, and restarts it", () => {
    const coordinator = services.coordinator;
    expect(coordinator.healthcheck?.disable).not.toBe(true);
    expect(coordinator.healthcheck?.test).toEqual(['CMD', 'node', 'docker/healthcheck.mjs', healthRoute('ready')]);
    expect(['on-failure', 'unless-stopped', 'always']).toContain(coordinator.restart);
    for (const service of Object.values(services)) {
      const test = service.healthcheck?.test;
      if (Array.isArray(test) && test[1] === 'node') expect(existsSync(join(ROOT, test[2])), `${test[2]} exists`).toBe(true);
    }
  });

  it("lets the coordinator call the banks at their compose-network (private) address and their own port, and nothing else", () => {
    const env = services.coordinator.environment ?? {};
    const networks = EgressPolicy.parse(env.PARTICIPANT_NETWORKS ?? '');
    expect(networks.refusal('172.18.0.5')).toBeNull();
    expect(networks.refusal('169.254.169.254')).not.toBeNull();
    const hosts = parseParticipantHosts(env.PARTICIPANT_HOSTS ?? '');
    for (const bank of ['bank-a', 'bank-b']) {
      const bankEnv = services[bank].environment ?? {};
      expect(hosts.get(bank), bank).toEqual(new Set([Number(bankEnv.PORT)]));
      expect(bankEnv.PUBLIC_URL).toBe(`http://${bank}:${bankEnv.PORT}`);
    }
  });

  it('runs the demo services, from the image, from sources that exist', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build === undefined || !service.command) continue;
      const entry = service.command[1];
      expect(entry, name).toMatch(/^dist\/.+\.js$/);
      expect(existsSync(join(ROOT, entry.replace(/^dist\//, '').replace(/\.js$/, '.ts'))), `${name}: source of ${entry}`).toBe(true);
    }
  });
});

// ---- Dockerfile ---------------------------------------------------------------------------

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { keyword: string; rest: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), rest: rest.join(' ') };
    });
}

/** Whether a .dockerignore pattern (`**`, `*`, plain names) keeps `path` out of the build context. */
function ignored(path: string, patterns: string[]): boolean {
  return patterns.some((pattern) => {
    const regex = pattern.replace(/[.+^${}()|[\]]/g, '\\$&').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*');
    return new RegExp(`^${regex}(/.*)?$`).test(path);
  });
}

describe('Dockerfile', () => {
  const steps = instructions(read('Dockerfile'));
  const ignore = read('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  const copies = steps.filter((step) => step.keyword === 'COPY').map((step) => step.rest.split(/\s+/).filter((word) => !word.startsWith('--chown')));
  const last = (keyword: string): string => steps.filter((step) => step.keyword === keyword).at(-1)?.rest ?? '';

  it('copies from the build context only files that exist and .dockerignore lets through', () => {
    const fromContext = copies.filter((words) => !words[0].startsWith('--from'));
    expect(fromContext.length).toBeGreaterThan(0);
    for (const words of fromContext) {
      for (const source of words.slice(0, -1)) {
        expect(existsSync(join(ROOT, source)), `COPY ${source}`).toBe(true);
        expect(ignored(source.replace(/\/$/, ''), ignore), `.dockerignore drops ${source}`).toBe(false);
      }
    }
  });

  it('copies from the build stage what the build stage has or builds', () => {
    const built = ['node_modules', 'dist', 'libs/protocol/dist', 'libs/sdk/dist', 'apps/coordinator/dist'];
    for (const words of copies.filter((w) => w[0] === '--from=build')) {
      const source = words[1].replace(/^\/app\//, '');
      expect(built.includes(source) || existsSync(join(ROOT, source)), `COPY --from=build ${words[1]}`).toBe(true);
    }
    expect(steps.some((step) => step.keyword === 'RUN' && step.rest.includes('npm run build:packages') && step.rest.includes('npm prune --omit=dev'))).toBe(true);
  });

  it('runs the built server under tini as the node user, on 0.0.0.0, with a readiness health check', () => {
    const tsconfig = JSON.parse(read('apps/coordinator/tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(tsconfig.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(existsSync(join(ROOT, SERVER_ENTRY.replace('/dist/', '/src/').replace(/\.js$/, '.ts')))).toBe(true);
    expect(JSON.parse(last('CMD'))).toEqual(['node', SERVER_ENTRY]);
    expect(JSON.parse(last('ENTRYPOINT'))).toEqual(['/usr/bin/tini', '--']);
    expect(last('USER')).toBe('node');
    expect(last('ENV')).toMatch(/\bHOST=0\.0\.0\.0\b/);
    expect(last('HEALTHCHECK')).toContain(`"docker/healthcheck.mjs", "${healthRoute('ready')}"`);
  });
});
