/** Assertions on rejections shared by the stage tests. */
import { expect } from 'vitest';
import { SourceError } from '../../src/errors.js';

/** The error `p` rejects with, checked to be a `type`; a promise that resolves fails the test. */
export async function rejection<T extends Error>(p: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  const err = await p.then(
    () => new Error(`expected a ${type.name}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as T;
}

/** A bad payload or source: a SourceError, exit code 4. */
export async function sourceFailure(p: Promise<unknown>): Promise<SourceError> {
  const err = await rejection(p, SourceError);
  expect(err.exitCode).toBe(4);
  return err;
}
