/**
 * cuentas: crea el formulario de solicitudes de gestión de usuarios con exactamente las
 * preguntas y opciones que cuentas lee con su configuración por defecto, vinculado a una hoja
 * de cálculo nueva, y escribe en el registro los identificadores para cuentas.toml.
 *
 * Uso, una vez, con la cuenta de Google Workspace de la entidad que será dueña del formulario:
 *   1. https://script.google.com → Proyecto nuevo; pegue este archivo en Código.gs.
 *   2. Cambie DEPENDENCIAS (la lista cerrada de [form] departments) y GRUPOS (los de
 *      [directory] allowed_groups que un solicitante puede pedir).
 *   3. Ejecute crearFormulario y autorice el acceso a Formularios y Hojas de cálculo.
 *   4. Ver → Registros: copie form_id y spreadsheet_id a [source] en cuentas.toml, y comparta
 *      la hoja (Lector) y el formulario (colaborador) con la cuenta de servicio (guía, sección 4).
 *
 * Las preguntas están entre las marcas <preguntas> y </preguntas> como JSON: una prueba de
 * cuentas comprueba que sus títulos y opciones son los que la configuración por defecto lee.
 * Si cambia un título aquí, cámbielo también en [form.columns].
 *
 * crearFormularioMesa crea el segundo formulario, el de la mesa de servicio y los
 * administradores (<preguntas-mesa>): con él confirman los pasos de una eliminación, marcan
 * como atendida una gestión manual, cancelan, liberan inactivaciones retenidas y reintentan.
 * Sus títulos y opciones los lee cuentas tal cual: no los cambie. Escribe en el registro lo de
 * [desk] en cuentas.toml, con el vínculo prellenado (prefill_url) que llevan los correos.
 */

const DEPENDENCIAS = [
  'Subdirección de Energía Eléctrica',
  'Subdirección de Hidrocarburos',
  'Oficina Asesora de Planeación',
  'Secretaría General',
  'GIT de Talento Humano',
];

const GRUPOS = ['VPN', 'SharePoint Proyectos', 'SIG'];

// <preguntas>
const PREGUNTAS = [
  {"titulo": "Tipo de solicitud", "tipo": "lista", "obligatoria": true, "opciones": ["Creación de cuenta", "Cambio de clave", "Modificación de cuenta", "Inactivación de cuenta", "Reactivación de cuenta", "Eliminación de cuenta", "Vacaciones o licencia", "Traslado de dependencia", "Cesión de contrato", "Suspensión de contrato", "Terminación anticipada", "Otra solicitud"]},
  {"titulo": "Tipo de vinculación", "tipo": "opcion", "obligatoria": true, "opciones": ["Funcionario", "Contratista", "Cuenta institucional o genérica"]},
  {"titulo": "Usuario de red existente", "tipo": "texto", "ayuda": "Todas las solicitudes menos la creación: el usuario con el que la persona inicia sesión (p. ej. maria.perez)."},
  {"seccion": "Datos de la persona"},
  {"titulo": "Nombres", "tipo": "texto"},
  {"titulo": "Apellidos", "tipo": "texto"},
  {"titulo": "Tipo de documento", "tipo": "lista", "opciones": ["Cédula de ciudadanía", "Cédula de extranjería", "Pasaporte", "Permiso por protección temporal"]},
  {"titulo": "Número de documento", "tipo": "texto"},
  {"titulo": "Correo electrónico personal", "tipo": "correo", "ayuda": "Adonde llegan los datos de acceso."},
  {"titulo": "Dependencia", "tipo": "dependencias"},
  {"titulo": "Cargo", "tipo": "texto"},
  {"titulo": "Correo del jefe inmediato o supervisor", "tipo": "correo"},
  {"seccion": "Contrato (contratistas)"},
  {"titulo": "Número de contrato", "tipo": "texto"},
  {"titulo": "Fecha de inicio del contrato", "tipo": "fecha"},
  {"titulo": "Fecha de terminación del contrato", "tipo": "fecha"},
  {"seccion": "Novedad"},
  {"titulo": "Fecha efectiva de la novedad", "tipo": "fecha"},
  {"titulo": "Fecha de regreso", "tipo": "fecha", "ayuda": "Vacaciones, licencias y suspensiones."},
  {"titulo": "Accesos o grupos requeridos", "tipo": "grupos"},
  {"titulo": "¿El usuario se encuentra en las instalaciones de la entidad?", "tipo": "opcion", "opciones": ["Sí", "No"], "ayuda": "Cambio de clave: quien está en la entidad la recibe de la mesa de servicio."},
  {"titulo": "Observaciones", "tipo": "parrafo"}
];
// </preguntas>

function crearFormulario() {
  const form = FormApp.create('Solicitudes de gestión de usuarios');
  form.setDescription('Procedimiento de gestión de usuarios. Las respuestas las atiende cuentas; ' +
    'la respuesta llega por correo.');
  // La columna del solicitante es la prueba de quién pide: correos verificados.
  form.setEmailCollectionType(FormApp.EmailCollectionType.VERIFIED);
  form.setAllowResponseEdits(false);
  for (const p of PREGUNTAS) {
    if (p.seccion) {
      form.addPageBreakItem().setTitle(p.seccion);
      continue;
    }
    let item;
    switch (p.tipo) {
      case 'lista':
        item = form.addListItem().setChoiceValues(p.opciones);
        break;
      case 'opcion':
        item = form.addMultipleChoiceItem().setChoiceValues(p.opciones);
        break;
      case 'dependencias':
        item = form.addListItem().setChoiceValues(DEPENDENCIAS);
        break;
      case 'grupos':
        item = form.addCheckboxItem().setChoiceValues(GRUPOS);
        break;
      case 'fecha':
        item = form.addDateItem();
        break;
      case 'parrafo':
        item = form.addParagraphTextItem();
        break;
      case 'correo':
        item = form.addTextItem().setValidation(
          FormApp.createTextValidation().requireTextIsEmail().build());
        break;
      default:
        item = form.addTextItem();
    }
    item.setTitle(p.titulo);
    if (p.ayuda) item.setHelpText(p.ayuda);
    if (p.obligatoria) item.setRequired(true);
  }
  const hoja = SpreadsheetApp.create('Solicitudes de gestión de usuarios (respuestas)');
  form.setDestination(FormApp.DestinationType.SPREADSHEET, hoja.getId());
  Logger.log('[source] form_id = "%s"', form.getId());
  Logger.log('[source] spreadsheet_id = "%s"', hoja.getId());
  Logger.log('Formulario: %s', form.getPublishedUrl());
}

// <preguntas-mesa>
const PREGUNTAS_MESA = [
  {"titulo": "Solicitud", "tipo": "texto", "obligatoria": true, "ayuda": "El número de la solicitud, p. ej. GU-2026-000123 (varias, separadas por comas; «todas» para liberar todas las retenidas)."},
  {"titulo": "Acción", "tipo": "lista", "obligatoria": true, "opciones": ["Confirmar paso de la eliminación", "Marcar como atendida", "Cancelar la solicitud", "Liberar inactivaciones retenidas", "Reintentar"]},
  {"titulo": "Paso", "tipo": "lista", "ayuda": "Solo para «Confirmar paso de la eliminación».", "opciones": ["Copia de seguridad del correo", "Copia de seguridad del calendario", "Copia de seguridad de los contactos", "Copia de seguridad del almacenamiento en la nube", "Copia de seguridad del equipo asignado", "Equipo retirado del dominio", "Información del usuario borrada del equipo"]},
  {"titulo": "Observaciones", "tipo": "parrafo", "ayuda": "Marcar como atendida: lo que se hizo (lo recibe el solicitante). Cancelar: el motivo. Confirmar: dónde quedó la copia."}
];
// </preguntas-mesa>

function crearFormularioMesa() {
  const form = FormApp.create('Mesa de servicio: acciones sobre solicitudes de gestión de usuarios');
  form.setDescription('Para la mesa de servicio y los administradores de cuentas. Cada respuesta se ' +
    'autoriza con la matriz de autorizadores; la respuesta de cuentas llega por correo.');
  // La dirección verificada es quien actúa: cuentas la busca en la matriz.
  form.setEmailCollectionType(FormApp.EmailCollectionType.VERIFIED);
  form.setAllowResponseEdits(false);
  const items = [];
  for (const p of PREGUNTAS_MESA) {
    let item;
    switch (p.tipo) {
      case 'lista':
        item = form.addListItem().setChoiceValues(p.opciones);
        break;
      case 'parrafo':
        item = form.addParagraphTextItem();
        break;
      default:
        item = form.addTextItem();
    }
    item.setTitle(p.titulo);
    if (p.ayuda) item.setHelpText(p.ayuda);
    if (p.obligatoria) item.setRequired(true);
    items.push(item);
  }
  const hoja = SpreadsheetApp.create('Mesa de servicio: acciones (respuestas)');
  form.setDestination(FormApp.DestinationType.SPREADSHEET, hoja.getId());
  // El vínculo prellenado, con marcadores donde cuentas pone la solicitud, la acción y el paso:
  // se crea con valores válidos y se cambian por los marcadores en el orden de las preguntas.
  const respuesta = form.createResponse()
    .withItemResponse(items[0].asTextItem().createResponse('GU-0000-000000'))
    .withItemResponse(items[1].asListItem().createResponse(PREGUNTAS_MESA[1].opciones[0]))
    .withItemResponse(items[2].asListItem().createResponse(PREGUNTAS_MESA[2].opciones[0]));
  const marcadores = ['%7Bsolicitud%7D', '%7Baccion%7D', '%7Bpaso%7D'];
  let n = 0;
  const prellenado = respuesta.toPrefilledUrl().replace(/(entry\.\d+)=[^&]*/g,
    (entrada, nombre) => n < marcadores.length ? nombre + '=' + marcadores[n++] : entrada);
  Logger.log('[desk] form_id = "%s"', form.getId());
  Logger.log('[desk] spreadsheet_id = "%s"', hoja.getId());
  SpreadsheetApp.flush();
  const pestana = hoja.getSheets().find((h) => h.getFormUrl()) || hoja.getSheets()[0];
  Logger.log('[desk] sheet = "%s"', pestana.getName());
  Logger.log('[desk] prefill_url = "%s"', prellenado);
  Logger.log('Formulario de la mesa: %s', form.getPublishedUrl());
}
