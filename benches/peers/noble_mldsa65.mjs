// ML-DSA-65 sign and verify throughput of @noble/post-quantum (the library the TypeScript ATP
// peer uses), single-threaded, on the same 142-byte input ATP's composite hands to ML-DSA-65.
// Prints one JSON object. Usage: node noble_mldsa65.mjs SECONDS
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';

const seconds = Number(process.argv[2] ?? '5');
const label = new TextEncoder().encode('COMPSIG-MLDSA65-Ed25519-SHA512');
// The composite's message representative is 142 bytes for ATP's envelope context.
const message = new Uint8Array(142).fill(0x5a);
const seed = new Uint8Array(32).fill(7);
const { secretKey, publicKey } = ml_dsa65.keygen(seed);
const signature = ml_dsa65.sign(message, secretKey, { context: label });
if (!ml_dsa65.verify(signature, message, publicKey, { context: label })) {
  throw new Error('noble ML-DSA-65 signature does not verify');
}

// Operations per wall-clock second and per CPU-second of the process (user + system; the
// process is one busy thread plus the runtime's mostly idle helpers).
function rate(op) {
  for (let i = 0; i < 3; i++) op(); // warm-up (JIT)
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let n = 0;
  while (performance.now() < end) {
    op();
    n++;
  }
  const wall = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return [n / wall, n / ((cpu.user + cpu.system) / 1e6)];
}

const [sign, signCpu] = rate(() => ml_dsa65.sign(message, secretKey, { context: label }));
const [verify, verifyCpu] = rate(() => {
  if (!ml_dsa65.verify(signature, message, publicKey, { context: label })) throw new Error('verify');
});
console.log(JSON.stringify({
  peer: 'noble-post-quantum ml-dsa-65',
  node: process.version,
  sign_per_s: sign,
  verify_per_s: verify,
  sign_per_cpu_s: signCpu,
  verify_per_cpu_s: verifyCpu,
}));
