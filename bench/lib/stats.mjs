export const median = (xs) => {
  if (!xs.length) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
export const max = (xs) => (xs.length ? Math.max(...xs) : undefined)
export const min = (xs) => (xs.length ? Math.min(...xs) : undefined)
