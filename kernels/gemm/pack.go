package gemm

// packB copies the kc×nc block of op(B) at (pc, jc) into dst as k-major panels
// of nr columns: B(p, j0+j) goes to dst[(j0/nr)·kc·nr + p·nr + j], and the
// columns of the last panel beyond nc are zero.
func packB[T element](dst, b []T, ldb int, tB bool, pc, kc, jc, nc, nr int) {
	for j0 := 0; j0 < nc; j0 += nr {
		w := min(nr, nc-j0)
		d := dst[j0*kc : j0*kc+kc*nr]
		if !tB { // B(p, j) = b[p·ldb + j]
			for p := 0; p < kc; p++ {
				row := d[p*nr : p*nr+nr]
				src := b[(pc+p)*ldb+jc+j0:]
				src = src[:w]
				for j, v := range src { // rows are short: a loop beats copy's call
					row[j] = v
				}
				clear(row[w:])
			}
			continue
		}
		// B(p, j) = b[j·ldb + p]
		for j := 0; j < w; j++ {
			src := b[(jc+j0+j)*ldb+pc:]
			src = src[:kc]
			for p, v := range src {
				d[p*nr+j] = v
			}
		}
		if w < nr {
			for p := 0; p < kc; p++ {
				clear(d[p*nr+w : p*nr+nr])
			}
		}
	}
}

// packA copies the mc×kc block of op(A) at (ic, pc) into dst as k-major panels
// of mr rows: A(i0+i, p) goes to dst[(i0/mr)·mr·kc + p·mr + i], and the rows
// of the last panel beyond mc are zero.
func packA[T element](dst, a []T, lda int, tA bool, ic, mc, pc, kc, mr int) {
	for i0 := 0; i0 < mc; i0 += mr {
		h := min(mr, mc-i0)
		d := dst[i0*kc : i0*kc+mr*kc]
		if tA { // A(i, p) = a[p·lda + i]
			for p := 0; p < kc; p++ {
				col := d[p*mr : p*mr+mr]
				src := a[(pc+p)*lda+ic+i0:]
				src = src[:h]
				for i, v := range src {
					col[i] = v
				}
				clear(col[h:])
			}
			continue
		}
		// A(i, p) = a[i·lda + p]: read h rows side by side, write each k step
		// contiguously.
		base := (ic+i0)*lda + pc
		if h == mr {
			for i := 0; i < mr; i++ {
				src := a[base+i*lda:]
				src = src[:kc]
				for p, v := range src {
					d[p*mr+i] = v
				}
			}
			continue
		}
		clear(d)
		for i := 0; i < h; i++ {
			src := a[base+i*lda:]
			src = src[:kc]
			for p, v := range src {
				d[p*mr+i] = v
			}
		}
	}
}
