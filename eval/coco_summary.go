package eval

// prTable is COCOeval's accumulated precision[t][r][k][a][m] and
// recall[t][k][a][m] (IoU threshold, recall threshold, class, area range,
// maxDets), flattened; -1 marks an undefined entry.
type prTable struct {
	classes   int
	precision []float64
	recall    []float64
}

// newPRTable returns a table for K classes with every entry undefined.
func newPRTable(K int) *prTable {
	p := &prTable{
		classes:   K,
		precision: make([]float64, numIoU*numRecall*K*numArea*numMaxDet),
		recall:    make([]float64, numIoU*K*numArea*numMaxDet),
	}
	for i := range p.precision {
		p.precision[i] = -1
	}
	for i := range p.recall {
		p.recall[i] = -1
	}
	return p
}

func (p *prTable) pIdx(t, r, k, a, m int) int {
	return (((t*numRecall+r)*p.classes+k)*numArea+a)*numMaxDet + m
}

func (p *prTable) rIdx(t, k, a, m int) int { return ((t*p.classes+k)*numArea+a)*numMaxDet + m }

// allIoU are the indices of every IoU threshold; m100 is maxDets' 100.
var allIoU = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}

const m100 = numMaxDet - 1

// summary is COCOeval.summarize's twelve numbers over all classes.
func (p *prTable) summary() Summary {
	return Summary{
		AP:       p.meanPrecision(allIoU, areaAll, m100),
		AP50:     p.meanPrecision([]int{0}, areaAll, m100),
		AP75:     p.meanPrecision([]int{5}, areaAll, m100),
		APSmall:  p.meanPrecision(allIoU, areaSmall, m100),
		APMedium: p.meanPrecision(allIoU, areaMedium, m100),
		APLarge:  p.meanPrecision(allIoU, areaLarge, m100),
		AR1:      p.meanRecall(areaAll, 0),
		AR10:     p.meanRecall(areaAll, 1),
		AR100:    p.meanRecall(areaAll, m100),
		ARSmall:  p.meanRecall(areaSmall, m100),
		ARMedium: p.meanRecall(areaMedium, m100),
		ARLarge:  p.meanRecall(areaLarge, m100),
	}
}

// summarizeClass fills class k's AP, AP50, AP75, AR100 and, when AP50 is
// defined, its precision-recall curve at IoU 0.5.
func (p *prTable) summarizeClass(k int, c *ClassResult) {
	c.AP = p.meanPrecision(allIoU, areaAll, m100, k)
	c.AP50 = p.meanPrecision([]int{0}, areaAll, m100, k)
	c.AP75 = p.meanPrecision([]int{5}, areaAll, m100, k)
	c.AR100 = p.meanRecall(areaAll, m100, k)
	if c.AP50 > -1 {
		c.PR50 = make([]float64, numRecall)
		for r := range c.PR50 {
			c.PR50[r] = p.precision[p.pIdx(0, r, k, areaAll, m100)]
		}
	}
}

// meanPrecision is the mean of the defined (> -1) precision entries at IoU
// thresholds ts, area range a and maxDets m, over classes ks (all if none),
// as COCOeval.summarize; -1 if none is defined.
func (p *prTable) meanPrecision(ts []int, a, m int, ks ...int) float64 {
	if ks == nil {
		ks = p.allClasses()
	}
	sum, n := 0.0, 0
	for _, t := range ts {
		for r := range numRecall {
			for _, k := range ks {
				if v := p.precision[p.pIdx(t, r, k, a, m)]; v > -1 {
					sum += v
					n++
				}
			}
		}
	}
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}

// meanRecall is the mean of the defined recall entries over every IoU
// threshold at area range a and maxDets m, over classes ks (all if none);
// -1 if none is defined.
func (p *prTable) meanRecall(a, m int, ks ...int) float64 {
	if ks == nil {
		ks = p.allClasses()
	}
	sum, n := 0.0, 0
	for t := range numIoU {
		for _, k := range ks {
			if v := p.recall[p.rIdx(t, k, a, m)]; v > -1 {
				sum += v
				n++
			}
		}
	}
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}

func (p *prTable) allClasses() []int {
	ks := make([]int, p.classes)
	for k := range ks {
		ks[k] = k
	}
	return ks
}
