import { createTestInfra } from '../src';
import { startStack } from './stack';
const live = new Map<unknown, string>();
const origSI = global.setInterval; const origCI = global.clearInterval; const origST = global.setTimeout; const origCT = global.clearTimeout;
(global as any).setInterval = (fn: any, ms: any, ...a: any[]) => { const t = origSI(fn, ms, ...a); live.set(t, 'I' + ms + new Error().stack!.split('\n').slice(2, 7).join('|')); return t; };
(global as any).clearInterval = (t: any) => { live.delete(t); return origCI(t); };
(global as any).setTimeout = (fn: any, ms: any, ...a: any[]) => { let t: any; t = origST((...x: any[]) => { live.delete(t); fn(...x); }, ms, ...a); if ((ms ?? 0) > 3000) live.set(t, 'T' + ms + new Error().stack!.split('\n').slice(2, 7).join('|')); return t; };
(global as any).clearTimeout = (t: any) => { live.delete(t); return origCT(t); };
it('x', async () => {
  const infra = await createTestInfra('zz');
  const stack = await startStack(infra.env(), {});
  await stack.stop();
  await infra.cleanup();
  await new Promise((r) => origST(r, 2000));
  for (const v of live.values()) console.log('LIVE', v);
});
