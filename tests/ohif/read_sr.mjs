// Reads a DICOM SR with Cornerstone3D's SR adapters (what OHIF uses to turn an SR's
// measurement groups into editable annotations) and prints, per annotation, its tool,
// label, whether closed, and its polyline in patient (world) coordinates, as JSON.
// Usage: node read_sr.mjs SR.dcm GEOMETRY.json
import fs from "fs";
import dcmjs from "dcmjs";
import { metaData } from "@cornerstonejs/core";
import { adaptersSR } from "@cornerstonejs/adapters";

const [srPath, geometryPath] = process.argv.slice(2);
const buf = fs.readFileSync(srPath);
const dict = dcmjs.data.DicomMessage.readFile(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)).dict;
const dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict);
// geometry: {"<SOPInstanceUID>:<frame>": {ipp, iop, spacing: [row, col], rows, columns, for}}
const geometry = JSON.parse(fs.readFileSync(geometryPath, "utf8"));
const imageIds = {};
for (const key of Object.keys(geometry)) imageIds[key] = `modic:${key}`;
metaData.addProvider((type, imageId) => {
  if (type !== "imagePlaneModule" || !imageId?.startsWith("modic:")) return undefined;
  const g = geometry[imageId.slice(6)];
  // as @cornerstonejs/dicom-image-loader fills it from PixelSpacing (row, column)
  return {
    frameOfReferenceUID: g.for,
    rows: g.rows,
    columns: g.columns,
    imagePositionPatient: g.ipp,
    rowCosines: g.iop.slice(0, 3),
    columnCosines: g.iop.slice(3, 6),
    rowPixelSpacing: g.spacing[0],
    columnPixelSpacing: g.spacing[1],
  };
}, 10000);
const state = adaptersSR.Cornerstone3D.MeasurementReport.generateToolState(dataset, imageIds, metaData);
const out = [];
for (const [tool, list] of Object.entries(state)) {
  for (const m of list) {
    const a = m.annotation;
    out.push({
      tool,
      label: a.data.label ?? a.metadata.label ?? null,
      imageId: a.metadata.referencedImageId,
      closed: a.data.contour?.closed ?? null,
      polyline: a.data.contour?.polyline ?? null,
      tracking_uid: m.TrackingUniqueIdentifier ?? null,
    });
  }
}
process.stdout.write(JSON.stringify(out));
