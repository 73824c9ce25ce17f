/**
 * Rotation of the initdata reference values with overlap (pure; the CoCo targets do the I/O).
 *
 * The rule that keeps every pod attestable: a reference value is added before any consumer is
 * given the initdata it matches, and removed only after no consumer can still run the initdata it
 * matched. Within one run:
 *   1. the RVPS entries get the desired value beside every value still overlapping (write 1);
 *   2. then INITDATA / the pod-template annotations change (write 2);
 *   3. a replaced value is dropped by a later run that has nothing to write in step 2, once every
 *      consumer that can be checked runs the new initdata with its rollout finished, or the overlap
 *      time has passed since it was replaced (the only rule for peer-pods-cm: any peer pod in the
 *      cluster may use it, and they cannot all be seen).
 * A failure between 1 and 2 leaves old and new values listed and the old initdata live: safe, and
 * the next run continues with step 2. Only values this tool published (the state stored with the
 * entries) are ever kept: a digest computed from a live INITDATA someone else wrote is never added,
 * or whoever can edit peer-pods-cm could get their own agent policy accepted for the overlap time.
 */

export interface RotationValues {
  /** `sha256:` of the initdata TOML. */
  id: string;
  /** Reference value name (`pcr08`) → hex value. */
  values: Record<string, string>;
}

export interface RotationState {
  version: 1;
  /** Expiration written into our entries (RVPS format: seconds, `Z`). */
  expiration: string;
  current?: RotationValues & { since: string };
  /** Replaced values still listed, newest first. `adopted`: taken over from an entry we had not written (--force-conflicts). */
  previous: (RotationValues & { retiredAt: string; adopted?: boolean })[];
}

export interface LiveEntry {
  /** The parsed element as it is in the ConfigMap. */
  raw: unknown;
  /** Elements carrying this name (more than one is ambiguous). */
  count: number;
}

export interface ConsumerObservation {
  /** `ConfigMap/openshift-sandboxed-containers-operator/peer-pods-cm`, `Deployment/zeta/pep`. */
  ref: string;
  /** Its live value decodes to the desired initdata (nothing to write). */
  current: boolean;
  /** Whether this tool can tell that every pod of it runs its current value (a Deployment can; peer-pods-cm cannot). */
  checkable: boolean;
  /** Checkable consumers: the rollout of the current value has finished (no pod of an older template left). */
  settled: boolean;
}

export interface RotationInput {
  now: Date;
  desired: RotationValues;
  /** Reference value name → `alg` written beside its value (hash-value format). */
  algs: Record<string, string>;
  format: 'hash-value' | 'value';
  state?: RotationState;
  /** Our names only, as found in the list. */
  live: Map<string, LiveEntry>;
  consumers: ConsumerObservation[];
  overlapMs: number;
  validMs: number;
  refreshMs: number;
  force: boolean;
}

export interface OverlapReport {
  id: string;
  values: Record<string, string>;
  retiredAt: string;
  /** When the overlap time ends. */
  until: string;
  /** Consumers not yet on the current initdata (or whose rollout has not finished). */
  waitingFor: string[];
}

export interface RotationDecision {
  /** Write 1 (before the initdata): entry name → JSON text, and the state stored with them. */
  rvps?: { set: Map<string, string>; state: RotationState; why: string[] };
  /** Write 2: consumers whose initdata changes. */
  update: string[];
  overlapping: OverlapReport[];
  /** Our entries found deleted or changed (repaired; with --force-conflicts also changed ones). */
  drift: string[];
  /** Reasons nothing may be written (an entry not ours, or edited by someone else, without --force-conflicts). */
  conflicts: string[];
}

/** Replaced values listed at once; observe.ts refuses a stored state with more than 64. */
export const MAX_OVERLAPPING = 32;

export function decideRotation(input: RotationInput): RotationDecision {
  const { now, desired, state, force } = input;
  const conflicts: string[] = [];
  const drift: string[] = [];
  const adopted: Record<string, string[]> = {};
  for (const name of Object.keys(desired.values)) {
    const live = input.live.get(name);
    if (live && live.count > 1) {
      if (!force) conflicts.push(`${live.count} entries are named ${name}`);
      else drift.push(`${name}: ${live.count} entries merged into one`);
    }
    if (live && !state) {
      if (!force) conflicts.push(`entry ${name} exists and was not written by zeta-provision`);
      else adopted[name] = entryValues(live.raw);
      continue;
    }
    if (!state) continue;
    const expected = entryText(name, state, input);
    if (!live) {
      if (expected !== undefined) drift.push(`${name}: deleted`);
    } else if (expected === undefined || canonical(live.raw) !== canonical(JSON.parse(expected))) {
      if (!force) conflicts.push(`entry ${name} was changed by someone else (it lists ${entryValues(live.raw).join(', ') || 'no values'})`);
      else {
        drift.push(`${name}: changed by someone else, taken over`);
        adopted[name] = entryValues(live.raw);
      }
    }
  }
  const update = input.consumers.filter((c) => !c.current).map((c) => c.ref);
  if (conflicts.length > 0) return { update, overlapping: [], drift, conflicts };

  const at = rvpsTime(now);
  const switching = state?.current?.id !== desired.id;
  let previous = (state?.previous ?? []).filter((p) => p.id !== desired.id);
  if (switching && state?.current) previous.unshift({ id: state.current.id, values: state.current.values, retiredAt: at });
  for (const [n, vs] of Object.entries(adopted)) {
    // Each adopted value keeps its own slot: listed until the overlap ends, as our own old values are.
    for (const [i, v] of vs.filter((x) => x !== desired.values[n]).entries())
      previous.push({ id: `adopted:${n}:${i}`, values: { [n]: v }, retiredAt: at, adopted: true });
  }

  if (previous.length > MAX_OVERLAPPING) {
    // Each one is a live attestation path; an unbounded list would also outgrow the state annotation.
    conflicts.push(`${previous.length} replaced initdata values would overlap (at most ${MAX_OVERLAPPING}); let rollouts finish or lower overlapHours`);
    return { update, overlapping: [], drift, conflicts };
  }

  const allOnCurrent = input.consumers.length > 0 && input.consumers.every((c) => c.checkable && c.current && c.settled);
  const waitingFor = input.consumers.filter((c) => !(c.current && c.settled && c.checkable)).map((c) => c.ref);
  const removed: string[] = [];
  if (update.length === 0 && !switching) {
    previous = previous.filter((p) => {
      const overlapOver = now.getTime() - Date.parse(p.retiredAt) >= input.overlapMs;
      // An adopted value may be used by pods we do not know of: only the overlap time retires it.
      const allMoved = allOnCurrent && !p.adopted;
      if (overlapOver || allMoved) {
        removed.push(`${p.id} (${allMoved ? 'every consumer runs the current initdata' : 'overlap time over'})`);
        return false;
      }
      return true;
    });
  }

  const next: RotationState = {
    version: 1,
    expiration: state?.expiration ?? rvpsTime(new Date(now.getTime() + input.validMs)),
    current: switching ? { ...desired, since: at } : state!.current,
    previous,
  };
  const why: string[] = [];
  if (switching) why.push(state?.current ? `initdata ${desired.id} replaces ${state.current.id}` : `initdata ${desired.id} added`);
  if (removed.length > 0) why.push(`removed ${removed.join(', ')}`);
  if (drift.length > 0) why.push(`repaired: ${drift.join('; ')}`);
  if (Date.parse(next.expiration) - now.getTime() < input.refreshMs) why.push(`expiration ${next.expiration} refreshed`);
  const entryDiffers = Object.keys(desired.values).some((n) => {
    const live = input.live.get(n);
    const text = entryText(n, next, input);
    return !live || text === undefined || canonical(live.raw) !== canonical(JSON.parse(text));
  });
  if (why.length === 0 && entryDiffers) why.push('entries differ from the state stored with them');
  if (why.length === 0 && JSON.stringify(next.current) !== JSON.stringify(state?.current)) why.push('current values changed');

  const overlapping = next.previous.map((p) => ({
    id: p.id,
    values: p.values,
    retiredAt: p.retiredAt,
    until: rvpsTime(new Date(Date.parse(p.retiredAt) + input.overlapMs)),
    waitingFor,
  }));
  if (why.length === 0) return { update, overlapping, drift, conflicts };
  // Every write sets the expiration afresh from the config, so it never lapses between runs.
  next.expiration = rvpsTime(new Date(now.getTime() + input.validMs));
  const set = new Map<string, string>();
  for (const n of Object.keys(desired.values)) set.set(n, entryText(n, next, input)!);
  return { rvps: { set, state: next, why }, update, overlapping, drift, conflicts };
}

/** Our entry as JSON text, values current first; undefined when the state has none for this name. */
export function entryText(name: string, state: RotationState, input: Pick<RotationInput, 'format' | 'algs'>): string | undefined {
  const values = [state.current?.values[name], ...state.previous.map((p) => p.values[name])].filter((v): v is string => v !== undefined);
  const unique = [...new Set(values)];
  if (unique.length === 0) return undefined;
  const alg = input.algs[name] ?? 'sha256';
  return input.format === 'hash-value'
    ? JSON.stringify({ name, expiration: state.expiration, 'hash-value': unique.map((value) => ({ alg, value })) })
    : JSON.stringify({ name, expiration: state.expiration, value: unique });
}

/** Values of an entry in either published format (`hash-value: [{alg, value}]` or `value: [..]` / `value: ".."`). */
export function entryValues(raw: unknown): string[] {
  if (raw === null || typeof raw !== 'object') return [];
  const r = raw as Record<string, unknown>;
  if (Array.isArray(r['hash-value']))
    return r['hash-value']
      .map((h) => (h && typeof h === 'object' ? (h as { value?: unknown }).value : undefined))
      .filter((v): v is string => typeof v === 'string');
  if (Array.isArray(r.value)) return r.value.filter((v): v is string => typeof v === 'string');
  return typeof r.value === 'string' ? [r.value] : [];
}

/** RVPS parses expirations with `%Y-%m-%dT%H:%M:%SZ`: no fractional seconds. */
export function rvpsTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** JSON with sorted keys, to compare an entry by meaning (a foreign edit may reorder keys). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
