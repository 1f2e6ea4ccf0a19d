"""The numba kernel of README.md against version 3's torch code (pip install numba; run from the repository root:
``python benchmarks/results/said-bound-2026-12-02/numba_kernel.py``)."""
import time, math, torch, numpy as np, numba
from numba import njit
torch.set_num_threads(1); numba.set_num_threads(1)
import sys; from pathlib import Path; sys.path.insert(0, str(Path.cwd()))
from methods import fastfood_walsh as walsh

@njit(fastmath=True, cache=True, boundscheck=False)
def fwht_inplace(a):
    L = a.shape[0]
    # stages h=1,2: radix-4 per group
    for i in range(0, L, 4):
        x0=a[i]; x1=a[i+1]; x2=a[i+2]; x3=a[i+3]
        s0=x0+x1; d0=x0-x1; s1=x2+x3; d1=x2-x3
        a[i]=s0+s1; a[i+1]=d0+d1; a[i+2]=s0-s1; a[i+3]=d0-d1
    h = 4
    while h < L:
        for i in range(0, L, 2*h):
            for j in range(h):
                x = a[i+j]; y = a[i+j+h]
                a[i+j] = x + y; a[i+j+h] = x - y
        h *= 2

@njit(fastmath=True, cache=True, boundscheck=False)
def project_add_nb(u, gauss, perm, keys, scale, base, out, buf):
    L = u.shape[0]
    for t in range(keys.shape[0]):
        k = keys[t]
        for i in range(L):
            buf[i] = gauss[i] * u[perm[i] ^ k]
        fwht_inplace(buf)
        o = t * L
        for i in range(L):
            out[o+i] = base[o+i] + scale * buf[i]

@njit(fastmath=True, cache=True, boundscheck=False)
def transpose_nb(gauss, perm, keys, grad, acc, buf):
    L = gauss.shape[0]
    for t in range(keys.shape[0]):
        k = keys[t]; o = t*L
        for i in range(L):
            buf[i] = grad[o+i]
        fwht_inplace(buf)
        for i in range(L):
            acc[perm[i] ^ k] += gauss[i] * buf[i]

L = 32768; nblk = 32   # 1M entries
draws = walsh.draw_round(0, 0, L)
z = torch.zeros(L); z[:20000] = torch.randn(20000)
u = walsh.signed_input_transform(draws, z)
base = torch.randn(nblk*L); out = torch.empty_like(base); scale = torch.tensor(0.01)
keys = walsh.walsh_indices(draws, 0, nblk).numpy().astype(np.int32)
perm = draws.permutation.numpy(); gauss = draws.gaussian.numpy()
buf = np.empty(L, np.float32); out2 = np.empty(nblk*L, np.float32)
def torch_fwd(): walsh.project_add(draws, u, 0, nblk, scale, base, out)
def nb_fwd(): project_add_nb(u.numpy(), gauss, perm, keys, np.float32(0.01), base.numpy(), out2, buf)
grad = torch.randn(nblk*L)
acc = torch.zeros(L); acc2 = np.zeros(L, np.float32)
def torch_bwd(): walsh.accumulate_transpose(draws, acc, grad.view(nblk, L), 0, nblk)
def nb_bwd(): transpose_nb(gauss, perm, keys, grad.numpy(), acc2, buf)
for f in (torch_fwd, nb_fwd, torch_bwd, nb_bwd): f()
torch_fwd(); nb_fwd()
print("max diff fwd", float((out - torch.from_numpy(out2)).abs().max()), float(out.abs().max()))
acc.zero_(); acc2[:] = 0; torch_bwd(); nb_bwd()
print("max diff bwd", float((acc - torch.from_numpy(acc2)).abs().max()), float(acc.abs().max()))
for name, f in [("torch fwd", torch_fwd), ("numba fwd", nb_fwd), ("torch transpose", torch_bwd), ("numba transpose", nb_bwd)]:
    ts = []
    for r in range(5):
        t0 = time.process_time(); f(); ts.append(time.process_time()-t0)
    print(name, "%.2f ns/entry" % (min(ts)/(nblk*L)*1e9))
